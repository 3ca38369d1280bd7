"""POST /sessions/{id}/selfie: the selfie (or burst) judged by /liveness's pipeline, one unit,
one verdict per session (Django's test client, real engine)."""

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.client import Client
from django.utils import timezone

from accounts.models import HashId, Tenant
from capture import service
from capture.models import CaptureSession
from guard.models import Refusal
from liveness import runtime
from liveness.answers import NOT_READY
from liveness.models import LivenessCheck
from ml.engine import LivenessEngine
from ml.quality import REFUSALS
from tests.capture.sessions import CROP, UNKNOWN_SESSION, open_session, post, verdict
from tests.conftest import LIVE_JPG, SPOOF_JPG, b64, data_uri
from tests.ml.corrupt import corrupt_copy

pytestmark = pytest.mark.usefixtures("warm_engine")


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


def test_a_selfie_claimed_in_time_reads_processing_until_its_verdict_never_expired(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claimed just before its session expired, judged after: GET read ``expired`` meanwhile,
    then ``done`` with a verdict and a unit, to a backend that had stopped at ``expired`` (9 of
    12 runs against a real server, a 2400x3200 JPEG sent 0.1 s before the expiry). It reads
    ``processing`` until the verdict, ``expired`` only once its worker must have died."""
    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    judge = service.judge_claimed
    read: list[str] = []

    def expiring_meanwhile(session: CaptureSession, *args: Any) -> bool:
        CaptureSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())
        read.append(verdict(client, sid, secret).json()["state"])
        return judge(session, *args)

    monkeypatch.setattr(service, "judge_claimed", expiring_meanwhile)
    taken = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert taken.status_code == 202, taken.content
    body = verdict(client, sid, secret).json()
    assert read == ["processing"] and body["state"] == "done"
    assert body["liveness_result"]["is_live"] == 1
    lost = service.PROCESSING_GRACE + timedelta(seconds=1)  # a worker killed mid-check
    CaptureSession.objects.filter(pk=sid).update(
        state=CaptureSession.PROCESSING, expires_at=timezone.now() - lost
    )
    assert verdict(client, sid, secret).json()["state"] == "expired"


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
    from liveness.checks import read_images

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
    assert not Refusal.objects.exists()  # a token call's 401 or 404: never counted


TOKEN_INVALID = {"error": "Invalid session token.", "code": "token_invalid"}


@pytest.mark.parametrize("change", ["deactivated", "revoked"])
def test_a_selfie_whose_tenant_is_deactivated_or_hash_id_revoked_while_judged_gets_token_invalid(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The unit asks the tenant active and the hash_id that opened the session unrevoked: the
    selfie gets the 401 token_invalid its token gets from then on, uncounted as every token
    call's 401, with no unit and no record, its session open. A deactivated tenant's was
    answered 404 "Unknown session." for a session still there, and counted a 401 never
    answered; a revoked hash_id's was judged and charged (202, one unit, the session done)."""
    from tests.liveness.test_liveness import changed_while_judged

    tenant, secret = make_tenant(f"stopped-{change}", request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    if change == "deactivated":
        changed_while_judged(
            monkeypatch, lambda: Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
        )
    else:
        changed_while_judged(monkeypatch, lambda: HashId.objects.get(tenant=tenant).revoke())
    url, body = f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}
    response = post(client, url, body, token)
    assert (response.status_code, response.json()) == (401, TOKEN_INVALID)
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    assert not LivenessCheck.objects.exists()
    assert not Refusal.objects.exists()
    assert CaptureSession.objects.get(pk=sid).state == CaptureSession.OPEN
    monkeypatch.undo()
    again = post(client, url, body, token)
    assert (again.status_code, again.json()) == (401, TOKEN_INVALID)


@pytest.mark.django_db(transaction=True)  # committed: the foreign key is checked at COMMIT
def test_a_session_whose_tenant_is_deleted_before_a_refused_selfie_is_unknown(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate's refusal locks no tenant row: its record failed the foreign key at COMMIT, a
    503 "database unavailable". Now 404, as the session's token gets from then on."""
    from tests.liveness.test_liveness import NO_FACE, deleted_before_judged

    tenant, secret = make_tenant(request_limit=3)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    deleted_before_judged(monkeypatch, tenant)
    response = post(client, f"/sessions/{sid}/selfie", {"selfie_image": b64(NO_FACE)}, token)
    assert (response.status_code, response.json()) == (404, UNKNOWN_SESSION)
    assert not LivenessCheck.objects.exists()


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
