"""POST /sessions/{id}/quality: a frame's quality report, no unit taken (Django's test client,
real engine)."""

from typing import Any

import cv2
import numpy as np
import pytest
from django.test.client import Client

from liveness.models import LivenessCheck
from ml.quality import REFUSALS
from tests.capture.sessions import CROP, open_session, post
from tests.conftest import LIVE_JPG, b64, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_quality_uses_no_quota_and_applies_every_gate(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(request_limit=1)  # crop_policy judge: /liveness judges crops
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/quality", opened["token"]
    crop = post(client, url, {"selfie_image": data_uri(CROP)}, token)
    assert crop.status_code == 200
    body = crop.json()
    assert (body["passed"], body["code"], body["capture"]) == (False, "face_too_close", "crop")
    assert body["error"] == REFUSALS["face_too_close"]
    assert body["failures"][0] == {"code": "face_too_close", "error": REFUSALS["face_too_close"]}
    for _ in range(3):
        assert post(client, url, {"selfie_image": data_uri(LIVE_JPG)}, token).status_code == 200
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    assert not LivenessCheck.objects.filter(tenant=tenant).exists()


def test_quality_and_selfie_refuse_a_grey_frame(make_tenant: Any, client: Client) -> None:
    """A monochrome camera's frame: the quality call says so before any selfie is sent, and
    the selfie is refused as /liveness refuses it, no unit spent."""
    tenant, secret = make_tenant()
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    image = cv2.imread(str(LIVE_JPG))
    assert image is not None
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert ok
    grey = b64(np.asarray(buffer).tobytes())
    body = post(client, f"/sessions/{sid}/quality", {"selfie_image": grey}, token).json()
    assert (body["passed"], body["code"], body["capture"]) == (False, "no_colour", "frame")
    assert body["failures"] == [{"code": "no_colour", "error": REFUSALS["no_colour"]}]
    selfie = post(client, f"/sessions/{sid}/selfie", {"selfie_image": grey}, token)
    assert (selfie.status_code, selfie.json()["code"]) == (422, "no_colour")
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


def test_quality_is_rate_limited(make_tenant: Any, client: Client, settings: Any) -> None:
    settings.SESSION_QUALITY_PER_S = 2
    _, secret = make_tenant()
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/quality", opened["token"]
    statuses = [post(client, url, {"selfie_image": "x"}, token) for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0]["Retry-After"]) >= 1
    assert limited[0].json() == {"error": "Quality check rate exceeded (2 per second)."}


def test_quality_frames_must_be_small(make_tenant: Any, client: Client, settings: Any) -> None:
    settings.SESSION_QUALITY_MAX_BYTES = 1000
    _, secret = make_tenant()
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/quality", opened["token"]
    response = post(client, url, {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert (response.status_code, response.json()) == (
        413,
        {"error": "Request body is too large (limit 1000 bytes)."},
    )
