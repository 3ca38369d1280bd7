"""POST /liveness through HTTP with the real engine and real dev images."""

import json
import logging
import re
from typing import Any

import cv2
import numpy as np
import pytest
from django.test import Client, override_settings

from accounts.models import HashId, Tenant
from guard.models import Refusal
from liveness import checks
from liveness.models import LivenessCheck
from tests.conftest import DEV_DATA, LIVE_JPG, SPOOF_JPG, Post, b64, data_uri

IMAGE_REQUIRED = {"error": "Selfie_image is required and must be a JPEG, JPG or PNG."}
IMAGE_INVALID = {
    "error": "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format."
}
INVALID_CREDENTIALS = {"message": "Invalid credentials"}
LIMIT_REACHED = {"message": "Your request limit has been reached."}
GIF_1PX = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

pytestmark = pytest.mark.usefixtures("warm_engine")


def encoded(ext: str, image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def used(tenant: Tenant) -> int:
    tenant.refresh_from_db()
    return tenant.requests_used


# --- success ---------------------------------------------------------------------------------


def test_live_selfie_with_data_uri_prefix(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    record, secret = tenant
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"liveness_result", "message"}
    assert body["message"] == "Success"
    assert set(body["liveness_result"]) == {"is_live", "liveness_score"}
    assert body["liveness_result"]["is_live"] == 1
    assert isinstance(body["liveness_result"]["liveness_score"], float)
    assert body["liveness_result"]["liveness_score"] == pytest.approx(0.9999, abs=0.05)
    assert used(record) == 1


def test_spoof_selfie_as_bare_base64(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    _, secret = tenant
    response = post_liveness({"hash_id": secret, "selfie_image": b64(SPOOF_JPG.read_bytes())})
    assert response.status_code == 201
    result = response.json()["liveness_result"]
    assert result["is_live"] == 0
    assert 0.0 <= result["liveness_score"] < 0.5


def test_png_selfie(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    _, secret = tenant
    # A full camera frame as PNG (the dev PNGs are face crops).
    upright = cv2.imread(str(DEV_DATA / "live" / "jomariya_2.jpg"))
    assert upright is not None
    png = "data:image/png;base64," + b64(encoded(".png", upright))
    response = post_liveness({"hash_id": secret, "selfie_image": png})
    assert response.status_code == 201
    assert response.json()["liveness_result"]["is_live"] in (0, 1)


def camera_png() -> bytes:
    """A full camera frame as PNG, at half size (972x728: the face is kept, the body small)."""
    upright = cv2.imread(str(DEV_DATA / "live" / "jomariya_2.jpg"))
    assert upright is not None
    return encoded(".png", cv2.resize(upright, None, fx=0.5, fy=0.5))


PNG_AFTER_IEND = {
    "newline": b"\n",
    "garbage": b"garbage after IEND",
    "zeros": bytes(100),
    "second-png": encoded(".png", np.zeros((32, 32, 3), np.uint8)),
}


@pytest.mark.parametrize("trailer", list(PNG_AFTER_IEND))
def test_a_png_followed_by_other_bytes_is_judged(
    tenant: tuple[Tenant, str], post_liveness: Post, trailer: str
) -> None:
    """Bytes after IEND are not the PNG's: judged as the PNG alone, as a JPEG's after EOI."""
    record, secret = tenant
    png = camera_png()
    alone = post_liveness({"hash_id": secret, "selfie_image": b64(png)})
    followed = post_liveness(
        {"hash_id": secret, "selfie_image": b64(png + PNG_AFTER_IEND[trailer])}
    )
    assert (alone.status_code, followed.status_code) == (201, 201), followed.content
    assert followed.json() == alone.json()
    assert used(record) == 2


@pytest.mark.parametrize("cut", ["inside-idat", "before-iend", "before-iend-then-newline"])
def test_a_truncated_png_is_invalid(
    tenant: tuple[Tenant, str], post_liveness: Post, cut: str
) -> None:
    record, secret = tenant
    png = camera_png()
    iend = len(png) - 12
    assert png[iend:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    data = {
        "inside-idat": png[: len(png) // 2],
        "before-iend": png[:iend],
        "before-iend-then-newline": png[:iend] + b"\n",
    }[cut]
    response = post_liveness({"hash_id": secret, "selfie_image": b64(data)})
    assert response.status_code == 400
    assert response.json() == IMAGE_INVALID
    assert used(record) == 0


def test_tenant_threshold_decides_is_live(make_tenant: Any, post_liveness: Post) -> None:
    _, secret = make_tenant("lenient", threshold=0.001)
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(SPOOF_JPG)})
    result = response.json()["liveness_result"]
    assert result["liveness_score"] >= 0.001
    assert result["is_live"] == 1


def test_line_broken_base64_is_accepted(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    _, secret = tenant
    text = b64(LIVE_JPG.read_bytes())
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    response = post_liveness({"hash_id": secret, "selfie_image": wrapped})
    assert response.status_code == 201


def test_check_is_recorded_without_secrets(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    record, secret = tenant
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    check = LivenessCheck.objects.get()
    assert check.tenant == record
    assert check.is_live is True
    assert check.score == pytest.approx(response.json()["liveness_result"]["liveness_score"])
    assert check.request_id == response["X-Request-ID"]
    assert check.latency_ms > 0
    stored = json.dumps(list(LivenessCheck.objects.values()), default=str)
    assert secret not in stored


# --- 401 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"selfie_image": "x"},
        {"hash_id": "", "selfie_image": "x"},
        {"hash_id": None, "selfie_image": "x"},
        {"hash_id": "not-a-real-hash-id-at-all-0000000000000000", "selfie_image": "x"},
        {"hash_id": "unknown"},
    ],
    ids=["missing", "empty", "null", "unknown", "unknown-without-image"],
)
def test_invalid_credentials(db: None, post_liveness: Post, body: dict[str, Any]) -> None:
    response = post_liveness(body)
    assert response.status_code == 401
    assert response.json() == INVALID_CREDENTIALS


def test_revoked_hash_id_is_refused(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    record, secret = tenant
    HashId.objects.get(tenant=record).revoke()
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert response.status_code == 401
    assert response.json() == INVALID_CREDENTIALS
    assert used(record) == 0


def test_inactive_tenant_is_refused(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    record, secret = tenant
    Tenant.objects.filter(pk=record.pk).update(is_active=False)
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert response.status_code == 401


def test_other_hash_ids_of_a_tenant_keep_working(
    tenant: tuple[Tenant, str], post_liveness: Post
) -> None:
    record, old = tenant
    new = HashId.issue(record).secret
    HashId.objects.get(prefix=old[:8]).revoke()
    assert post_liveness({"hash_id": old, "selfie_image": data_uri(LIVE_JPG)}).status_code == 401
    assert post_liveness({"hash_id": new, "selfie_image": data_uri(LIVE_JPG)}).status_code == 201


# --- 400: image missing or not decodable ------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [None, "", "data:image/png;base64,"],
    ids=["null", "empty", "empty-data-uri"],
)
def test_missing_image(tenant: tuple[Tenant, str], post_liveness: Post, image: Any) -> None:
    record, secret = tenant
    response = post_liveness({"hash_id": secret, "selfie_image": image})
    assert response.status_code == 400
    assert response.json() == IMAGE_REQUIRED
    assert used(record) == 0


def test_absent_image_key(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    response = post_liveness({"hash_id": tenant[1]})
    assert response.status_code == 400
    assert response.json() == IMAGE_REQUIRED


def corrupt_images() -> dict[str, str]:
    jpeg = LIVE_JPG.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return {
        "bad-base64": "this is not base64 !!!",
        "gif": GIF_1PX,
        "gif-data-uri": f"data:image/gif;base64,{GIF_1PX}",
        "truncated-jpeg": b64(jpeg[: len(jpeg) // 2]),
        "truncated-png": b64(encoded(".png", noise)[:200]),
        "webp": b64(encoded(".webp", noise)),
        "bmp": b64(encoded(".bmp", noise)),
        "random-bytes": b64(np.random.default_rng(1).bytes(4096)),
        "text": b64(b"hello, I am not an image"),
    }


@pytest.mark.parametrize("name", list(corrupt_images()))
def test_corrupt_image(tenant: tuple[Tenant, str], post_liveness: Post, name: str) -> None:
    record, secret = tenant
    response = post_liveness({"hash_id": secret, "selfie_image": corrupt_images()[name]})
    assert response.status_code == 400
    assert response.json() == IMAGE_INVALID
    assert used(record) == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda jpeg: jpeg[: len(jpeg) // 3] + b"\xff\xd9",
        lambda jpeg: jpeg[: len(jpeg) // 2] + b"\xff\xd9",
        lambda jpeg: jpeg[: len(jpeg) // 2] + bytes(2000) + jpeg[len(jpeg) // 2 + 2000 :],
    ],
    ids=["cut-third-then-eoi", "cut-half-then-eoi", "zeroed-middle"],
)
def test_damaged_jpeg_ending_with_eoi_is_invalid(
    tenant: tuple[Tenant, str], post_liveness: Post, damage: Any
) -> None:
    """libjpeg decodes it with grey where the data is missing, and only warns: refused as any
    corrupt image, no unit spent, no check recorded."""
    record, secret = tenant
    jpeg = (DEV_DATA / "live" / "jomariya_1.jpg").read_bytes()
    response = post_liveness({"hash_id": secret, "selfie_image": b64(damage(jpeg))})
    assert (response.status_code, response.json()) == (400, IMAGE_INVALID)
    assert used(record) == 0
    assert not LivenessCheck.objects.exists()


def test_a_progressive_jpeg_cut_at_a_scan_boundary_is_invalid_and_its_reason_logged(
    tenant: tuple[Tenant, str], post_liveness: Post, caplog: pytest.LogCaptureFixture
) -> None:
    """2 of its 10 scans, EOI appended: libjpeg decodes a blurred image without a warning; the
    scan headers refuse it. The answer names no reason; the log line does, with the request
    id, and nothing of the image."""
    record, secret = tenant
    jpeg = (DEV_DATA / "live" / "jomariya_1.jpg").read_bytes()
    scans = [m.start() for m in re.finditer(b"\xff\xda", jpeg)]
    assert len(scans) == 10
    cut = jpeg[: scans[2]] + b"\xff\xd9"
    with caplog.at_level(logging.INFO, logger="liveness.checks"):
        response = post_liveness({"hash_id": secret, "selfie_image": b64(cut)})
    assert (response.status_code, response.json()) == (400, IMAGE_INVALID)
    assert used(record) == 0
    assert not LivenessCheck.objects.exists()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("image ")]
    assert line == (
        f"image refused tenant={record.pk} request_id={response['X-Request-ID']} "
        "code=image_invalid reason=truncated progressive JPEG (its scans stop before the last one)"
    )


def test_credentials_are_checked_before_the_image(db: None, post_liveness: Post) -> None:
    response = post_liveness({"hash_id": "nope", "selfie_image": GIF_1PX})
    assert response.status_code == 401


# --- 400: malformed requests (our additions) --------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["{not json", "", "[1, 2]", '"a string"', "null", b"\xff\xfe"],
    ids=["broken", "empty", "array", "string", "null", "not-utf8"],
)
def test_malformed_json(db: None, post_liveness: Post, raw: str | bytes) -> None:
    response = post_liveness(raw)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_wrong_types(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    assert post_liveness({"hash_id": 123, "selfie_image": "x"}).status_code == 400
    response = post_liveness({"hash_id": tenant[1], "selfie_image": ["x"]})
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


# --- 422 / 429 --------------------------------------------------------------------------------


def test_no_face_is_refused_without_using_quota(
    tenant: tuple[Tenant, str], post_liveness: Post
) -> None:
    record, secret = tenant
    blank = encoded(".jpg", np.full((480, 640, 3), 127, np.uint8))
    response = post_liveness({"hash_id": secret, "selfie_image": b64(blank)})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "no_face"
    assert isinstance(body["error"], str) and body["error"]
    assert used(record) == 0
    assert LivenessCheck.objects.get().refused_code == "no_face"


def test_quota_exhausted(make_tenant: Any, post_liveness: Post) -> None:
    record, secret = make_tenant("small", request_limit=2)
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    assert [post_liveness(body).status_code for _ in range(2)] == [201, 201]
    response = post_liveness(body)
    assert response.status_code == 429
    assert response.json() == LIMIT_REACHED
    assert used(record) == 2


def deleted_while_judged(monkeypatch: pytest.MonkeyPatch, tenant: Tenant) -> None:
    """The tenant deleted (an operator, in the admin) while the engine judges its selfie:
    between authentication and the unit. The engine itself runs unchanged."""
    analyse = checks.analyse

    def analyse_then_delete(*args: Any, **kwargs: Any) -> Any:
        fused = analyse(*args, **kwargs)
        Tenant.objects.filter(pk=tenant.pk).delete()
        return fused

    monkeypatch.setattr(checks, "analyse", analyse_then_delete)


def test_a_tenant_deleted_during_its_check_gets_401(
    make_tenant: Any, post_liveness: Post, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reserve_unit finds no row for a tenant that no longer exists: not 429 "limit reached"
    but the 401 its hash_id gets from then on, counted with no tenant (its counts went with
    it), with no record."""
    record, secret = make_tenant("leaving", request_limit=5)
    deleted_while_judged(monkeypatch, record)
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert (response.status_code, response.json()) == (401, INVALID_CREDENTIALS)
    assert not LivenessCheck.objects.exists()
    refusal = Refusal.objects.get()  # no count under the deleted id: forget_refusals ran
    assert (refusal.status, refusal.code, refusal.tenant_id) == (401, "invalid_credentials", 0)
    monkeypatch.undo()
    again = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert (again.status_code, again.json()) == (401, INVALID_CREDENTIALS)


def changed_while_judged(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """``change`` (an operator, in the admin) made while the engine judges a selfie: between
    authentication and the unit. The engine itself runs unchanged."""
    analyse = checks.analyse

    def analyse_then_change(*args: Any, **kwargs: Any) -> Any:
        fused = analyse(*args, **kwargs)
        change()
        return fused

    monkeypatch.setattr(checks, "analyse", analyse_then_change)


@pytest.mark.parametrize("change", ["deactivated", "revoked"])
def test_a_tenant_deactivated_or_revoked_during_its_check_gets_401(
    make_tenant: Any, post_liveness: Post, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The reservation asks that the tenant be active and its hash_id unrevoked: a check
    already authenticated gets the 401 its hash_id gets from then on, spends no unit and
    leaves no record (it was answered 201, a unit spent)."""
    record, secret = make_tenant(f"stopped-{change}", request_limit=5)
    if change == "deactivated":
        changed_while_judged(
            monkeypatch, lambda: Tenant.objects.filter(pk=record.pk).update(is_active=False)
        )
    else:
        changed_while_judged(monkeypatch, lambda: HashId.objects.get(tenant=record).revoke())
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert (response.status_code, response.json()) == (401, INVALID_CREDENTIALS)
    assert used(record) == 0
    assert not LivenessCheck.objects.exists()
    refusal = Refusal.objects.get()
    assert (refusal.status, refusal.code, refusal.tenant_id) == (
        401,
        "invalid_credentials",
        record.pk,
    )


def deleted_before_judged(monkeypatch: pytest.MonkeyPatch, tenant: Tenant) -> None:
    """The tenant deleted (an operator, in the admin) once its selfie is decoded, before the
    engine judges it: a gate's refusal then records a row for a tenant that is gone."""
    analyse = checks.analyse

    def delete_then_analyse(*args: Any, **kwargs: Any) -> Any:
        Tenant.objects.filter(pk=tenant.pk).delete()
        return analyse(*args, **kwargs)

    monkeypatch.setattr(checks, "analyse", delete_then_analyse)


NO_FACE = encoded(".jpg", np.full((480, 640, 3), 127, np.uint8))


@pytest.mark.django_db(transaction=True)  # committed: the foreign key is checked at COMMIT
def test_a_tenant_deleted_during_a_refused_check_gets_401(
    make_tenant: Any, post_liveness: Post, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate's 422 takes no unit, so nothing locked the tenant's row: its record failed the
    foreign key at COMMIT, answered 503 "database unavailable" (an ERROR line blaming the
    database). Now the 401 its hash_id gets from then on, counted, nothing recorded."""
    record, secret = make_tenant("leaving-refused", request_limit=5)
    deleted_before_judged(monkeypatch, record)
    response = post_liveness({"hash_id": secret, "selfie_image": b64(NO_FACE)})
    assert (response.status_code, response.json()) == (401, INVALID_CREDENTIALS)
    assert not LivenessCheck.objects.exists()
    refusal = Refusal.objects.get()  # no count under the deleted id: forget_refusals ran
    assert (refusal.status, refusal.code, refusal.tenant_id) == (401, "invalid_credentials", 0)


def test_zero_limit_is_checked_before_the_image(make_tenant: Any, post_liveness: Post) -> None:
    _, secret = make_tenant("none-left", request_limit=0)
    # No quota left: the image is never read, so a bad one cannot cost a decode either.
    for image in (GIF_1PX, "", data_uri(LIVE_JPG)):
        response = post_liveness({"hash_id": secret, "selfie_image": image})
        assert response.status_code == 429
        assert response.json() == LIMIT_REACHED


# --- 405 / 404 / 413 --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_wrong_method(client: Any, method: str) -> None:
    response = getattr(client, method)("/liveness")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()
    assert "POST" in response["Allow"]


def test_no_trailing_slash_redirect(db: None, client: Any) -> None:
    response = client.post("/liveness/", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


def test_body_too_large_by_content_length(db: None, post_liveness: Post) -> None:
    with override_settings(LIVENESS_MAX_BODY_BYTES=1000):
        response = post_liveness({"hash_id": "x", "selfie_image": "A" * 2000})
    assert response.status_code == 413
    assert "error" in response.json()


def test_default_limit_accepts_10mb_image_but_not_20mb(db: None, post_liveness: Post) -> None:
    ten_mb_as_base64 = "A" * (10 * 1024 * 1024 * 4 // 3)
    assert post_liveness({"hash_id": "x", "selfie_image": ten_mb_as_base64}).status_code == 401
    twenty = "A" * (20 * 1024 * 1024)
    assert post_liveness({"hash_id": "x", "selfie_image": twenty}).status_code == 413


def test_accept_header_does_not_change_format(db: None, post_liveness: Post) -> None:
    response = post_liveness({"hash_id": "x"}, HTTP_ACCEPT="text/html")
    assert response.status_code == 401
    assert response.json() == INVALID_CREDENTIALS


# --- X-Request-ID -----------------------------------------------------------------------------


def test_request_id_generated_on_every_response(db: None, client: Any, post_liveness: Post) -> None:
    for response in (post_liveness({}), client.get("/liveness"), client.get("/status_check")):
        assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_request_id_echoed_when_sane(db: None, post_liveness: Post) -> None:
    response = post_liveness({}, HTTP_X_REQUEST_ID="abc-123.DEF")
    assert response["X-Request-ID"] == "abc-123.DEF"


@pytest.mark.parametrize("incoming", ["has space", "x" * 200, "<script>", "a\tb"])
def test_request_id_replaced_when_not_sane(db: None, post_liveness: Post, incoming: str) -> None:
    response = post_liveness({}, HTTP_X_REQUEST_ID=incoming)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_liveness_needs_no_csrf_token(db: None) -> None:
    response = Client(enforce_csrf_checks=True).post(
        "/liveness", data="{}", content_type="application/json"
    )
    assert response.status_code == 401


def test_the_profiles_in_use_are_compiled_at_start(make_tenant: Any) -> None:
    from liveness.runtime import profiles_in_use

    make_tenant("plain")
    assert profiles_in_use() == {"fast"}  # DTN (thorough only) waits for its first request
    make_tenant("careful", profile="thorough")
    assert profiles_in_use() == {"fast", "thorough"}


@pytest.mark.slow  # 9 s at load 8: loads a second engine
def test_a_broken_model_left_for_first_use_answers_503_and_spends_nothing(
    make_tenant: Any,
    post_liveness: Post,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tenant whose profile needs a model that cannot be compiled gets not_ready (503) and
    keeps its unit; the other tenants are served; once the file is fixed, so is it."""
    import shutil

    from django.conf import settings

    from liveness import runtime
    from liveness.answers import NOT_READY
    from ml.engine import LivenessEngine

    copy = tmp_path / "models"
    shutil.copytree(settings.MODEL_DIR, copy, ignore=shutil.ignore_patterns("cache"))
    engine = LivenessEngine.load(copy, eager={"fast"})
    engine.warm_up()
    monkeypatch.setattr(runtime._holder, "_engine", engine)  # this process's real engine
    weights = (copy / "dtn.bin").read_bytes()
    (copy / "dtn.bin").write_bytes(weights[: len(weights) // 2])
    careful, careful_key = make_tenant("careful", profile="thorough")
    plain, plain_key = make_tenant("plain")
    image = data_uri(LIVE_JPG)
    refused = post_liveness({"hash_id": careful_key, "selfie_image": image})
    assert refused.status_code == 503
    assert refused.json() == {"error": NOT_READY}
    assert post_liveness({"hash_id": plain_key, "selfie_image": image}).status_code == 201
    careful.refresh_from_db()
    assert careful.requests_used == 0
    (copy / "dtn.bin").write_bytes(weights)
    assert post_liveness({"hash_id": careful_key, "selfie_image": image}).status_code == 201
