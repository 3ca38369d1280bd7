"""Capture sessions through HTTP (Django's test client; the concurrency test uses gunicorn)."""

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.client import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import HashId, Tenant
from capture import service
from capture.models import CaptureSession, token_digest
from facia_site import env
from guard.models import Refusal
from liveness import runtime
from liveness.answers import NOT_READY
from liveness.models import LivenessCheck
from ml.engine import LivenessEngine
from ml.quality import REFUSALS
from tests.conftest import DEV_DATA, LIVE_JPG, SPOOF_JPG, data_uri
from tests.ml.corrupt import corrupt_copy

pytestmark = pytest.mark.usefixtures("warm_engine")
CROP = DEV_DATA / "live" / "wolf_1.png"  # a dev face crop


def post(client: Client, url: str, body: Any, token: str | None = None, **extra: Any) -> Any:
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=raw, content_type="application/json", **extra)


def open_session(client: Client, secret: str) -> dict[str, Any]:
    response = post(client, "/sessions", {"hash_id": secret})
    assert response.status_code == 201, response.content
    return response.json()


def verdict(client: Client, session_id: str, secret: str) -> Any:
    return client.get(f"/sessions/{session_id}", HTTP_X_HASH_ID=secret)


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


def test_same_verdict_as_liveness(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant()
    direct = post(client, "/liveness", {"hash_id": secret, "selfie_image": data_uri(SPOOF_JPG)})
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(SPOOF_JPG)}, token)
    assert (
        verdict(client, sid, secret).json()["liveness_result"] == direct.json()["liveness_result"]
    )


def test_burst_fuses_frames(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant()
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    frames = [data_uri(LIVE_JPG)] * 3
    response = post(client, f"/sessions/{sid}/selfie", {"frames": frames}, token)
    assert response.status_code == 202 and response.json()["frames"] == 3
    body = verdict(client, sid, secret).json()
    assert body["frames"] == 3 and body["liveness_result"]["is_live"] == 1
    too_many = open_session(client, secret)
    refused = post(
        client,
        f"/sessions/{too_many['session_id']}/selfie",
        {"frames": frames * 2},
        too_many["token"],
    )
    assert refused.status_code == 400
    assert refused.json() == {"error": "frames must be a list of 1 to 3 base64-encoded images."}


def test_replayed_selfie_is_refused_and_quota_used_once(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(request_limit=5)
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/selfie", opened["token"]
    assert post(client, url, {"selfie_image": data_uri(LIVE_JPG)}, token).status_code == 202
    again = post(client, url, {"selfie_image": data_uri(SPOOF_JPG)}, token)
    assert again.status_code == 409
    assert again.json()["error"] == "This session already has its verdict; start a new session."
    quality = post(
        client,
        f"/sessions/{opened['session_id']}/quality",
        {"selfie_image": data_uri(LIVE_JPG)},
        token,
    )
    assert quality.status_code == 409
    tenant.refresh_from_db()
    assert tenant.requests_used == 1
    assert verdict(client, opened["session_id"], secret).json()["liveness_result"]["is_live"] == 1


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


def test_gate_refused_selfie_leaves_the_session_open(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(crop_policy="refuse")
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    refused = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(CROP)}, token)
    assert refused.status_code == 422
    assert refused.json() == {"error": REFUSALS["face_too_close"], "code": "face_too_close"}
    body = verdict(client, sid, secret).json()
    assert body["state"] == "open" and body["liveness_result"] is None
    assert body["refused"] == {"code": "face_too_close", "error": REFUSALS["face_too_close"]}
    ok = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert ok.status_code == 202
    tenant.refresh_from_db()
    assert tenant.requests_used == 1


def test_bad_tokens(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant("one")
    _, other_secret = make_tenant("two")
    mine = open_session(client, secret)
    theirs = open_session(client, other_secret)
    url = f"/sessions/{mine['session_id']}/quality"
    body = {"selfie_image": data_uri(LIVE_JPG)}
    cases = {
        "token_missing": post(client, url, body),
        "token_invalid": post(client, url, body, theirs["token"]),  # another tenant's
    }
    cases["malformed"] = post(client, url, body, HTTP_AUTHORIZATION="Basic abc")
    cases["garbage"] = post(client, url, body, "x" * 500)
    cases["non-ascii"] = post(client, url, body, HTTP_AUTHORIZATION="Bearer é")
    for name, response in cases.items():
        assert response.status_code == 401, name
        assert response["WWW-Authenticate"].startswith("Bearer"), name
    assert cases["token_missing"].json()["code"] == "token_missing"
    assert cases["malformed"].json()["code"] == "token_missing"
    # RFC 6750 3.1: no error code when the request has no token at all (docs: `Bearer`)
    assert cases["token_missing"]["WWW-Authenticate"] == "Bearer"
    refused = 'Bearer error="invalid_token", error_description="token_invalid"'
    assert cases["token_invalid"]["WWW-Authenticate"] == refused
    assert cases["token_invalid"].json() == {
        "error": "Invalid session token.",
        "code": "token_invalid",
    }
    assert cases["garbage"].json()["code"] == "token_invalid"
    # The other tenant's hash_id cannot read this session either.
    assert verdict(client, mine["session_id"], other_secret).status_code == 404
    assert verdict(client, mine["session_id"], "nope").json() == {"message": "Invalid credentials"}
    assert client.get(f"/sessions/{mine['session_id']}").status_code == 401
    # The hash_id in the URL is not an accepted way.
    assert client.get(f"/sessions/{mine['session_id']}?hash_id={secret}").status_code == 401


def test_expired_token(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    CaptureSession.objects.filter(pk=sid).update(expires_at=timezone.now() - timedelta(seconds=1))
    for action in ("quality", "selfie"):
        response = post(client, f"/sessions/{sid}/{action}", {"selfie_image": "x"}, token)
        assert response.status_code == 401
        assert response.json() == {
            "error": "The session token has expired; start a new session.",
            "code": "token_expired",
        }
    assert verdict(client, sid, secret).json()["state"] == "expired"
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


class AfterExpiry:
    """django.utils.timezone as capture.service reads it: the session's lifetime has passed,
    while the token check (capture.tokens) still reads the real clock."""

    def now(self) -> datetime:
        return timezone.now() + timedelta(seconds=settings.SESSION_TTL_S + 1)


def test_a_selfie_whose_session_expires_before_its_claim_is_told_so(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token was valid when checked, then the session expired while the frames were
    decoded (3 camera frames take a while): 401 token_expired, not 409 'already being
    judged' about a session that is open, and no unit."""
    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    monkeypatch.setattr(service, "timezone", AfterExpiry())
    response = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert (response.status_code, response.json()) == (
        401,
        {"error": "The session token has expired; start a new session.", "code": "token_expired"},
    )
    assert CaptureSession.objects.get(pk=sid).state == "open"
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


def delete_sessions_on_check_insert() -> Callable[[], None]:
    """A trigger deleting every capture session when a check row is inserted: as
    ``prune_sessions --days 0`` or an admin deleting the session while its selfie is judged
    (the row goes between the claim and the verdict). Returns what drops it."""
    sessions, checks = CaptureSession._meta.db_table, LivenessCheck._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE OR REPLACE FUNCTION prune_now() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN DELETE FROM {sessions}; RETURN NEW; END $$"
            )
            action = "FOR EACH ROW EXECUTE FUNCTION prune_now()"
        else:
            action = f"BEGIN DELETE FROM {sessions}; END"
        cursor.execute(f"CREATE TRIGGER prune_now AFTER INSERT ON {checks} {action}")

    def drop() -> None:
        on = f" ON {checks}" if connection.vendor == "postgresql" else ""
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS prune_now{on}")

    return drop


UNKNOWN_SESSION = {"error": "Unknown session."}


def test_a_session_deleted_while_its_selfie_is_judged_is_unknown(
    make_tenant: Any, client: Client
) -> None:
    """The verdict found its claim gone and raised: a 500. Now 404, and no unit or record."""
    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    drop = delete_sessions_on_check_insert()
    try:
        response = post(
            client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token
        )
    finally:
        drop()
    assert (response.status_code, response.json()) == (404, UNKNOWN_SESSION)
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    assert not LivenessCheck.objects.filter(tenant=tenant).exists()
    assert CaptureSession.objects.filter(pk=sid).exists()  # rolled back with the check


def test_a_session_deleted_before_its_claim_is_unknown(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted while the frames were decoded: the refused claim's re-read raised (a 500)."""
    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    read_images = service.read_images

    def read_then_prune(*args: Any, **kwargs: Any) -> Any:
        images = read_images(*args, **kwargs)
        CaptureSession.objects.filter(pk=sid).delete()
        return images

    monkeypatch.setattr(service, "read_images", read_then_prune)
    response = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert (response.status_code, response.json()) == (404, UNKNOWN_SESSION)
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


def test_a_session_whose_tenant_is_deleted_while_judged_is_unknown(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant, and its sessions with it, deleted during the check: 404, as the session's
    token gets from then on, not 429 "limit reached"."""
    from tests.liveness.test_liveness import deleted_while_judged

    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    deleted_while_judged(monkeypatch, tenant)
    response = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert (response.status_code, response.json()) == (404, UNKNOWN_SESSION)
    assert not LivenessCheck.objects.exists()


@pytest.mark.django_db(transaction=True)  # committed: the foreign key is checked at COMMIT
def test_a_session_whose_tenant_is_deleted_before_a_refused_selfie_is_unknown(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate's refusal locks no tenant row: its record failed the foreign key at COMMIT, a
    503 "database unavailable". Now 404, as the session's token gets from then on."""
    from tests.liveness.test_liveness import NO_FACE, b64, deleted_before_judged

    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    deleted_before_judged(monkeypatch, tenant)
    response = post(client, f"/sessions/{sid}/selfie", {"selfie_image": b64(NO_FACE)}, token)
    assert (response.status_code, response.json()) == (404, UNKNOWN_SESSION)
    assert not LivenessCheck.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deleted", ["hash_id", "tenant"])
def test_a_session_opened_as_its_hash_id_is_deleted_is_refused(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch, deleted: str
) -> None:
    """The hash_id (or its tenant) deleted between its authentication and the new session's
    row: the row failed its foreign key, a 503 "database unavailable". Now 401, as that
    hash_id gets from then on, and no session."""
    tenant, secret = make_tenant(request_limit=3)
    opened = service.open_session

    def delete_then_open(owner: Tenant, credential: HashId) -> service.Opened:
        if deleted == "hash_id":
            HashId.objects.filter(pk=credential.pk).delete()
        else:
            Tenant.objects.filter(pk=owner.pk).delete()
        return opened(owner, credential)

    monkeypatch.setattr(service, "open_session", delete_then_open)
    response = post(client, "/sessions", {"hash_id": secret})
    assert (response.status_code, response.json()) == (401, {"message": "Invalid credentials"})
    assert not CaptureSession.objects.exists()


def test_unknown_and_malformed_session_ids(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant()
    opened = open_session(client, secret)
    unknown = "00000000-0000-4000-8000-000000000000"
    response = post(client, f"/sessions/{unknown}/selfie", {"selfie_image": "x"}, opened["token"])
    assert (response.status_code, response.json()) == (404, {"error": "Unknown session."})
    assert verdict(client, unknown, secret).status_code == 404
    assert post(client, "/sessions/not-a-uuid/selfie", {}).json() == {"error": "Not found."}


def test_a_session_id_in_upper_case_is_the_same_session(make_tenant: Any, client: Client) -> None:
    """A UUID's hex digits are read in either case (RFC 9562): a backend whose database hands
    the id back in upper case (SQL Server's uniqueidentifier) got 404 "Not found." for its own
    session, on GET and on every token call (Django's uuid converter takes lower case only)."""
    _, secret = make_tenant(request_limit=5)
    opened = open_session(client, secret)
    upper = opened["session_id"].upper()
    read = verdict(client, upper, secret)
    assert read.status_code == 200, read.content
    assert read.json()["session_id"] == opened["session_id"]  # answered in its own form
    token = opened["token"]
    quality = post(
        client, f"/sessions/{upper}/quality", {"selfie_image": data_uri(LIVE_JPG)}, token
    )
    assert quality.status_code == 200, quality.content
    selfie = post(client, f"/sessions/{upper}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert selfie.status_code == 202, selfie.content
    assert verdict(client, upper, secret).json()["state"] == "done"
    mixed = upper[:9] + opened["session_id"][9:]
    assert verdict(client, mixed, secret).json()["state"] == "done"


def test_create_refuses_bad_hash_ids_and_methods(db: None, client: Client) -> None:
    assert post(client, "/sessions", {"hash_id": "nope"}).json() == {
        "message": "Invalid credentials"
    }
    assert post(client, "/sessions", "[").status_code == 400
    response = client.get("/sessions")
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_bad_selfie_input_keeps_the_session_open(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant()
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/selfie", opened["token"]
    assert post(client, url, {}, token).status_code == 400
    assert post(client, url, {"selfie_image": "bm90IGFuIGltYWdl"}, token).status_code == 400
    assert post(client, url, {"frames": "x"}, token).status_code == 400
    assert CaptureSession.objects.get(pk=opened["session_id"]).state == "open"


@pytest.mark.parametrize("frames", [[1, 2], [None], [{"x": 1}], [["a"]], [True, "x"]])
def test_frames_that_are_not_strings_are_refused_naming_frames(
    make_tenant: Any, client: Client, frames: list[Any]
) -> None:
    """The error named ``selfie_image`` ("selfie_image must be a base64-encoded string."), a
    field the request did not send."""
    tenant, secret = make_tenant()
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/selfie", opened["token"]
    response = post(client, url, {"frames": frames}, token)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "frames must be a list of 1 to 3 base64-encoded images."},
    )
    assert CaptureSession.objects.get(pk=opened["session_id"]).state == "open"


def test_quota_reached_keeps_the_session_open(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(request_limit=1)
    opened = open_session(client, secret)
    Tenant.objects.filter(pk=tenant.pk).update(request_limit=0)  # reached once it is open
    url, token = f"/sessions/{opened['session_id']}/selfie", opened["token"]
    response = post(client, url, {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert (response.status_code, response.json()) == (
        429,
        {"message": "Your request limit has been reached."},
    )
    assert CaptureSession.objects.get(pk=opened["session_id"]).state == "open"
    Tenant.objects.filter(pk=tenant.pk).update(request_limit=1)
    assert post(client, url, {"selfie_image": data_uri(LIVE_JPG)}, token).status_code == 202


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
        "selfie_check_id",  # the check record's id (a number)
        "challenge_mode",  # the rule the session opened under: its tenant's choice then
        "challenge_band",  # and its when_unsure band (a number)
    }


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


def test_token_calls_answer_listed_origins_only(db: None, client: Client, settings: Any) -> None:
    settings.CAPTURE_ALLOWED_ORIGINS = ["https://app.example"]
    url = "/sessions/00000000-0000-4000-8000-000000000000/quality"
    preflight = client.options(
        url, HTTP_ORIGIN="https://app.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example"
    assert preflight["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    refused = client.post(
        url, data="{}", content_type="application/json", HTTP_ORIGIN="https://app.example"
    )
    assert (
        refused.status_code == 404
        and refused["Access-Control-Allow-Origin"] == "https://app.example"
        and refused["Access-Control-Expose-Headers"] == "Retry-After, X-Request-ID"
    )
    other = client.options(url, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
    hash_id_call = client.options("/sessions", HTTP_ORIGIN="https://app.example")
    assert "Access-Control-Allow-Origin" not in hash_id_call


def test_origins_spelt_otherwise_than_browsers_send_them_still_match(
    db: None, client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CAPTURE_ALLOWED_ORIGINS is compared as a string with the Origin a browser sends, which
    is lower case, without the default port, and punycode: an operator's
    ``https://App.Example:443`` started the service and matched no page, every cross-origin
    call of the component failing in the browser."""
    configured = "https://App.Example:443, HTTP://Localhost:8080, https://Bücher.example"
    monkeypatch.setenv("CAPTURE_ALLOWED_ORIGINS", configured)
    settings.CAPTURE_ALLOWED_ORIGINS = env.env_origins("CAPTURE_ALLOWED_ORIGINS")
    url = "/sessions/00000000-0000-4000-8000-000000000000/quality"
    for origin in ("https://app.example", "http://localhost:8080", "https://xn--bcher-kva.example"):
        preflight = client.options(
            url, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
        assert preflight.get("Access-Control-Allow-Origin") == origin, origin
        assert preflight["Access-Control-Allow-Methods"] == "POST"


def test_a_nan_from_a_model_fails_a_selfie_as_it_fails_liveness(
    make_tenant: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The selfie is judged by /liveness's pipeline: a model's NaN is a 503 with no unit, no
    record and the session open again (not a 500 from an uncaught ModelFault)."""
    copy = corrupt_copy(settings.MODEL_DIR, tmp_path / "models", record_digest=True)
    monkeypatch.setattr(runtime._holder, "_engine", LivenessEngine.load(copy))
    tenant, secret = make_tenant("nan", request_limit=5)
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/selfie", opened["token"]
    response = post(client, url, {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert (response.status_code, response.json()) == (503, {"error": NOT_READY})
    assert CaptureSession.objects.get(pk=opened["session_id"]).state == "open"
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    assert not LivenessCheck.objects.filter(tenant=tenant).exists()


def test_reading_a_verdict_counts_its_refusals(make_tenant: Any, client: Client) -> None:
    """GET /sessions/{id} is admitted as /liveness is: its 401s count as /liveness's do."""
    tenant, secret = make_tenant()
    sid = open_session(client, secret)["session_id"]
    read = client.get(f"/sessions/{sid}", HTTP_X_HASH_ID="nope", REMOTE_ADDR="203.0.113.57")
    assert read.status_code == 401
    rows = Refusal.objects.values_list("status", "code", "tenant_id", "client", "hits")
    assert list(rows) == [(401, "invalid_credentials", 0, "203.0.113.0/24", 1)]


@pytest.mark.parametrize("call", ["quality", "selfie", "challenge"])
@pytest.mark.parametrize("origin", ["https://app.example", "https://other.example"])
def test_a_preflight_204_has_no_body_and_no_content_type(
    db: None, client: Client, settings: Any, call: str, origin: str
) -> None:
    """A 204 has no body (RFC 9110 15.3.5), so nothing to type: the preflight said
    ``Content-Type: text/html; charset=utf-8``, Django's default for a plain HttpResponse."""
    settings.CAPTURE_ALLOWED_ORIGINS = ["https://app.example"]
    url = f"/sessions/00000000-0000-4000-8000-000000000000/{call}"
    preflight = client.options(url, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert (preflight.status_code, preflight.content) == (204, b"")
    assert "Content-Type" not in preflight, dict(preflight.headers)


def written(queries: CaptureQueriesContext) -> list[str]:
    """The statements that wrote, as verb and table."""
    verbs = ("INSERT", "UPDATE", "DELETE")
    return [" ".join(q["sql"].split()[:2]) for q in queries if q["sql"].startswith(verbs)]


def test_a_read_writes_nothing_but_a_spent_held_selfies_verdict_once(
    make_tenant: Any, client: Client, settings: Any
) -> None:
    """GET /sessions/{id} writes no session (``expired`` is read from expires_at, never
    stored), except to decide a held selfie whose failed challenge has no try left under the
    CAPTURE_CHALLENGE_TRIES now: one conditional UPDATE of the session and one of its check
    record, once; every later read finds it done and writes nothing (the same answer)."""
    from accounts.models import WHEN_UNSURE
    from capture.models import FAILED

    tenant, secret = make_tenant(challenge=WHEN_UNSURE)
    credential = HashId.objects.get(tenant=tenant)
    sessions = {name: service.open_session(tenant, credential).session for name in "ODEH"}
    past = timezone.now() - timedelta(seconds=1)
    CaptureSession.objects.filter(pk=sessions["E"].pk).update(expires_at=past)
    CaptureSession.objects.filter(pk=sessions["D"].pk).update(
        state=CaptureSession.DONE, is_live=True, score=0.9, finished_at=timezone.now()
    )
    check = LivenessCheck.insert(tenant_id=tenant.pk, is_live=False, score=0.5, latency_ms=1.0)
    CaptureSession.objects.filter(pk=sessions["H"].pk).update(
        score=0.5,
        capture="frame",
        frames=1,
        selfie_check_id=check,
        challenge=FAILED,
        challenge_code="step_timeout",
        challenge_tries=1,
    )
    settings.CAPTURE_CHALLENGE_TRIES = 1  # lowered after its failure: no try left
    answers = {}
    for name, session in sessions.items():
        with CaptureQueriesContext(connection) as queries:
            answers[name] = verdict(client, str(session.pk), secret).json()
        expected = ['UPDATE "capture_capturesession"', 'UPDATE "liveness_livenesscheck"']
        assert written(queries) == (expected if name == "H" else []), name
    assert [answers[name]["state"] for name in "ODEH"] == ["open", "done", "expired", "done"]
    assert answers["H"]["liveness_result"] == {"is_live": 0, "liveness_score": 0.5}
    with CaptureQueriesContext(connection) as queries:
        again = verdict(client, str(sessions["H"].pk), secret).json()
    assert written(queries) == [] and again == answers["H"]
    assert LivenessCheck.objects.get(pk=check).is_live is False
