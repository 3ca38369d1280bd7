"""A whole capture session, POST /sessions to GET /sessions/{id} through quality and selfie
(Django's test client, real engine)."""

from typing import Any

import pytest
from django.db import connection
from django.test.client import Client

from capture.models import CaptureSession, token_digest
from liveness.models import LivenessCheck
from tests.capture.sessions import open_session, post, verdict
from tests.conftest import LIVE_JPG, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_happy_path(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(request_limit=5)
    opened = open_session(client, secret)
    assert set(opened) == {"session_id", "token", "expires_at", "expires_in"}
    sid, token = opened["session_id"], opened["token"]
    assert len(token) == 43 and opened["expires_in"] == 300
    stored = CaptureSession.objects.get(pk=sid)
    assert stored.token_digest == token_digest(token) and token not in stored.token_digest

    quality = post(client, f"/sessions/{sid}/quality", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert quality.status_code == 200
    body = quality.json()
    assert (body["passed"], body["code"], body["failures"], body["capture"]) == (
        True,
        None,
        [],
        "frame",
    )
    assert body["face"]["w"] > 64 and (body["width"], body["height"]) == (480, 640)
    assert verdict(client, sid, secret).json()["state"] == "open"

    selfie = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert selfie.status_code == 202
    assert selfie.json() == {"session_id": sid, "state": "received", "frames": 1}  # no verdict

    read = verdict(client, sid, secret)
    assert read.status_code == 200
    body = read.json()
    assert body["state"] == "done" and body["capture"] == "frame" and body["frames"] == 1
    assert body["message"] == "Success" and body["liveness_result"]["is_live"] == 1
    tenant.refresh_from_db()
    assert tenant.requests_used == 1
    check = LivenessCheck.objects.get(tenant=tenant)
    assert check.score == pytest.approx(body["liveness_result"]["liveness_score"])


def test_no_image_at_rest(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant()
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    image = data_uri(LIVE_JPG)
    post(client, f"/sessions/{sid}/quality", {"selfie_image": image}, token)
    post(client, f"/sessions/{sid}/selfie", {"selfie_image": image}, token)
    marker = image.split(",", 1)[1][1000:1040]  # a piece of the base64 text
    raw = LIVE_JPG.read_bytes()[2000:2032]  # and of the JPEG bytes
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, str):
                        assert marker not in value and token not in value, table
                    if isinstance(value, bytes | memoryview):
                        assert raw not in bytes(value), table
    fields = {f.name for f in CaptureSession._meta.fields}
    assert fields == {
        "id",
        "tenant",
        "credential",
        "token_digest",
        "created_at",
        "expires_at",
        "state",
        "is_live",
        "score",
        "capture",
        "frames",
        "refused_code",
        "finished_at",
        # the head-turn judge's state: steps, times and landmark coordinates (numbers only)
        "challenge",
        "challenge_judge",
        "challenge_code",
        "challenge_tries",
        "challenge_version",
        "selfie_check",  # the check record's id (a number)
        "selfie_request_id",  # the check's request id (32 hex digits or the client's own)
        "challenge_mode",  # the rule the session opened under: its tenant's choice then
        "challenge_band",  # and its when_unsure band (a number)
        "token_calls",  # how many token calls it has made (a number)
    }
