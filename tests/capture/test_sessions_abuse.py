"""What one session token can make the service do is bounded (Django's test client, real
engine): body bytes whatever the transfer encoding, JPEG scans and pixels sized for what the
component sends, the session's own rates and call budget on every call (not the tenant's
rate, its backend's), quota and rates before any decode, revocation of the hash_id that
opened it; and every session endpoint answers OPTIONS as /liveness does."""

import base64
import io
import json
from typing import Any

import cv2
import pytest
from django.test import override_settings
from django.test.client import Client

from accounts.models import HashId, Tenant
from bench.corpus import jpeg_with_empty_scans
from bench.images import no_face_jpeg
from capture.models import CaptureSession
from guard import throttle
from guard.models import Counter
from liveness.models import LivenessCheck
from ml.engine import LivenessEngine
from tests.capture.sessions import open_session, post
from tests.conftest import DEV_DATA, LIVE_JPG, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")
IMAGE_INVALID = {
    "error": "Invalid or corrupt selfie image. Images must be in PNG, JPG, or JPEG format."
}
QUOTA_429 = {"message": "Your request limit has been reached."}
CALLS_SPENT = {
    "error": "This session has made its 3 calls; start a new session.",
    "code": "session_calls_spent",
}
TOO_MANY_SCANS = {
    "error": "This progressive JPEG has more than 4 scans, the most a session call decodes; "
    "send a baseline JPEG or a PNG.",
    "code": "image_too_many_scans",
}


def too_many_pixels(width: int, height: int, limit: int) -> dict[str, str]:
    return {
        "error": f"This image is {width}x{height} ({width * height:,} pixels), more than the "
        f"{limit:,} pixels a session call decodes; send it scaled down to at most {limit:,} "
        "pixels.",
        "code": "image_too_many_pixels",
    }


# A phone photo /liveness judges, written as a progressive JPEG of 10 scans (ml.decode).
PROGRESSIVE_PHOTO = DEV_DATA / "live" / "jomariya_1.jpg"


def jpeg_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def opened_urls(client: Client, secret: str) -> tuple[str, str, str]:
    """(quality url, selfie url, token) of a new session."""
    opened = open_session(client, secret)
    base = f"/sessions/{opened['session_id']}"
    return f"{base}/quality", f"{base}/selfie", opened["token"]


def test_chunked_quality_body_is_bounded_by_bytes_read(
    make_tenant: Any, client: Client, settings: Any
) -> None:
    """A chunked body has no Content-Length: the quality limit holds on what is read."""
    settings.SESSION_QUALITY_MAX_BYTES = 1000
    _, secret = make_tenant()
    quality, _, token = opened_urls(client, secret)
    body = json.dumps({"selfie_image": data_uri(LIVE_JPG)}).encode()

    def chunked() -> dict[str, Any]:  # as gunicorn passes one: no length, a stream to its end
        stream = io.BytesIO(body)
        return {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream}

    response = post(client, quality, body, token, **chunked())
    assert (response.status_code, response.json()) == (
        413,
        {"error": "Request body is too large (limit 1000 bytes)."},
    )
    settings.SESSION_QUALITY_MAX_BYTES = len(body)  # exactly the limit is read and judged
    assert post(client, quality, body, token, **chunked()).status_code == 200


@pytest.mark.slow  # 7.3 s at load 8
def test_many_scan_and_oversized_frames_are_refused_from_their_structure(
    make_tenant: Any, client: Client
) -> None:
    """A progressive JPEG with many scans (each a pass over the whole declared frame), or
    more pixels than the component ever sends, is refused (400) before it is decoded."""
    _, secret = make_tenant()
    quality, selfie, token = opened_urls(client, secret)
    many_scans = jpeg_uri(jpeg_with_empty_scans(54, (8000, 5000)))  # 64 scans, 69 kB
    progressive = jpeg_uri(jpeg_with_empty_scans(0))  # the face as PIL writes it: 10 scans
    large = jpeg_uri(no_face_jpeg(1500, 1000))  # 1.5 MP: no 480 px quality frame
    for image, answer in ((many_scans, TOO_MANY_SCANS), (progressive, TOO_MANY_SCANS)):
        response = post(client, quality, {"selfie_image": image}, token)
        assert (response.status_code, response.json()) == (400, answer)
    response = post(client, quality, {"selfie_image": large}, token)
    assert (response.status_code, response.json()) == (400, too_many_pixels(1500, 1000, 1 << 20))
    assert post(client, quality, {"selfie_image": data_uri(LIVE_JPG)}, token).status_code == 200
    huge = jpeg_uri(no_face_jpeg(4500, 3000))  # 13.5 MP: over any camera frame it takes
    for frames, answer in (
        ([many_scans], TOO_MANY_SCANS),
        ([data_uri(LIVE_JPG), progressive], TOO_MANY_SCANS),
        ([huge], too_many_pixels(4500, 3000, 4096 * 3072)),
    ):
        response = post(client, selfie, {"frames": frames}, token)
        assert (response.status_code, response.json()) == (400, answer)
    assert CaptureSession.objects.get().state == "open"


def test_a_progressive_phone_photo_is_refused_for_its_scans_not_as_corrupt(
    make_tenant: Any, client: Client, post_liveness: Any
) -> None:
    """A phone's progressive JPEG (10 scans) that /liveness judges: a session's selfie and
    quality call refuse it for their 4-scan bound, saying so and what to send instead, not
    "Invalid or corrupt selfie image", which would send the integrator looking for damage."""
    _, secret = make_tenant()
    body = {"hash_id": secret, "selfie_image": data_uri(PROGRESSIVE_PHOTO)}
    assert post_liveness(body).status_code == 201
    quality, selfie, token = opened_urls(client, secret)
    for url in (selfie, quality):
        response = post(client, url, {"selfie_image": data_uri(PROGRESSIVE_PHOTO)}, token)
        assert (response.status_code, response.json()) == (400, TOO_MANY_SCANS)
    assert CaptureSession.objects.get().state == "open"


def scaled_face(width: int, height: int) -> str:
    """The dev face photo scaled to ``width`` x ``height``, encoded in memory as a camera's
    baseline JPEG: a valid photo of that size."""
    face = cv2.imread(str(LIVE_JPG))
    assert face is not None
    image = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return jpeg_uri(data.tobytes())


def test_a_photo_over_a_sessions_pixel_bound_is_refused_for_its_size_not_as_corrupt(
    make_tenant: Any, client: Client, post_liveness: Any
) -> None:
    """A 16 MP phone photo (4608x3456) that /liveness judges, as a session selfie, and a
    1280x960 quality frame (1.2 MP): each call refuses it for its bound on pixels, naming the
    bound, not "Invalid or corrupt selfie image" (the file is valid)."""
    _, secret = make_tenant()
    phone_photo = scaled_face(4608, 3456)
    assert post_liveness({"hash_id": secret, "selfie_image": phone_photo}).status_code == 201
    quality, selfie, token = opened_urls(client, secret)
    response = post(client, selfie, {"selfie_image": phone_photo}, token)
    expected = too_many_pixels(4608, 3456, 4096 * 3072)
    assert (response.status_code, response.json()) == (400, expected)
    response = post(client, quality, {"selfie_image": scaled_face(1280, 960)}, token)
    assert (response.status_code, response.json()) == (400, too_many_pixels(1280, 960, 1 << 20))
    assert post(client, quality, {"selfie_image": scaled_face(1024, 768)}, token).status_code == 200
    assert CaptureSession.objects.get().state == "open"


def test_selfies_are_rate_limited_per_session(
    make_tenant: Any, client: Client, settings: Any
) -> None:
    """A refused selfie uses no quota, so its retries have a rate of their own."""
    settings.SESSION_SELFIE_PER_MIN = 2
    tenant, secret = make_tenant()
    _, selfie, token = opened_urls(client, secret)
    no_face = {"selfie_image": jpeg_uri(no_face_jpeg(640, 480))}
    statuses = [post(client, selfie, no_face, token) for _ in range(5)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert limited[0].json() == {"error": "Selfie rate exceeded (2 per minute)."}
    assert int(limited[0]["Retry-After"]) >= 1
    # At most two per minute were judged (a minute boundary within the loop allows four).
    assert LivenessCheck.objects.filter(tenant=tenant).count() <= 4


def test_a_refused_burst_runs_no_classifier(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every frame of a burst passes the gates before any classifier runs: a burst whose
    last frame has no face costs detections only. (The real engine runs; this counts its
    classifier calls.)"""
    classified: list[int] = []
    score = LivenessEngine.score

    def counted(self: LivenessEngine, *args: Any, **kwargs: Any) -> dict[str, float]:
        classified.append(1)
        return score(self, *args, **kwargs)

    monkeypatch.setattr(LivenessEngine, "score", counted)
    tenant, secret = make_tenant()
    _, selfie, token = opened_urls(client, secret)
    face = data_uri(LIVE_JPG)
    no_face = jpeg_uri(no_face_jpeg(640, 480))
    refused = post(client, selfie, {"frames": [face, face, no_face]}, token)
    assert refused.status_code == 422 and refused.json()["code"] == "no_face"
    assert classified == []
    accepted = post(client, selfie, {"frames": [face, face]}, token)
    assert accepted.status_code == 202 and len(classified) == 2
    tenant.refresh_from_db()
    assert tenant.requests_used == 1


def test_a_tenant_at_its_limit_opens_no_session_and_decodes_nothing(
    make_tenant: Any, client: Client
) -> None:
    tenant, secret = make_tenant(request_limit=0)
    response = post(client, "/sessions", {"hash_id": secret})
    assert (response.status_code, response.json()) == (429, QUOTA_429)
    assert not CaptureSession.objects.exists()
    # Reached while a session is open: 429 before the image is read (this one is no image).
    Tenant.objects.filter(pk=tenant.pk).update(request_limit=1)
    quality, selfie, token = opened_urls(client, secret)
    Tenant.objects.filter(pk=tenant.pk).update(requests_used=1)
    garbage = {"selfie_image": "bm90IGFuIGltYWdl"}
    for url in (quality, selfie):
        response = post(client, url, garbage, token)
        assert (response.status_code, response.json()) == (429, QUOTA_429), url


def tenant_rate_hits(tenant: Tenant) -> int:
    """Every call counted against the tenant's rate limit, whatever minute it fell in."""
    rows = Counter.objects.filter(scope=throttle.RATE_SCOPE, subject=str(tenant.pk))
    return sum(rows.values_list("hits", flat=True))


def test_one_token_leaves_the_tenants_rate_limit_to_its_backend(
    make_tenant: Any, client: Client, settings: Any
) -> None:
    """Counted against the tenant's rate, one token's refused calls (8 a second) left every
    other user of the tenant 429 for as long as the token lived. The session's own budget
    bounds a token; the backend's calls still count."""
    settings.SESSION_QUALITY_PER_S = 100  # no second-window refuses any of these calls
    tenant, secret = make_tenant(rate_limit_per_minute=3)
    quality, selfie, token = opened_urls(client, secret)
    garbage = {"selfie_image": "bm90IGFuIGltYWdl"}
    statuses = [post(client, url, garbage, token).status_code for url in [quality] * 10 + [selfie]]
    assert statuses == [400] * 11
    assert tenant_rate_hits(tenant) == 1  # the POST /sessions
    assert post(client, "/sessions", {"hash_id": secret}).status_code == 201
    live = post(client, "/liveness", {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert live.status_code == 201
    assert tenant_rate_hits(tenant) == 3


def test_a_session_over_its_call_budget_is_refused_alone(
    make_tenant: Any, client: Client, settings: Any
) -> None:
    """Every token call spends the budget; past it the session's calls get their own 429, told
    to wait until the session expires; the tenant's other sessions go on."""
    settings.SESSION_CALL_BUDGET = 3
    _, secret = make_tenant(rate_limit_per_minute=5)
    quality, selfie, token = opened_urls(client, secret)
    garbage = {"selfie_image": "bm90IGFuIGltYWdl"}
    assert [post(client, quality, garbage, token).status_code for _ in range(3)] == [400] * 3
    for url in (quality, selfie, quality.replace("/quality", "/challenge")):
        refused = post(client, url, garbage, token)
        assert (refused.status_code, refused.json()) == (429, CALLS_SPENT), url
        assert 1 <= int(refused["Retry-After"]) <= settings.SESSION_TTL_S
    session = CaptureSession.objects.get(pk=quality.split("/")[2])
    assert session.token_calls == 3  # a refused call is not counted
    other_quality, _, other_token = opened_urls(client, secret)
    frame = {"selfie_image": data_uri(LIVE_JPG)}
    assert post(client, other_quality, frame, other_token).status_code == 200


def test_revoking_the_hash_id_ends_its_open_sessions(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant()
    other = HashId.issue(tenant).secret  # a second hash_id of the same tenant (rotation)
    quality, selfie, token = opened_urls(client, secret)
    other_quality, _, other_token = opened_urls(client, other)
    body = {"selfie_image": data_uri(LIVE_JPG)}
    assert post(client, quality, body, token).status_code == 200
    HashId.objects.get(prefix=secret[:8]).revoke()
    for url in (quality, selfie):
        response = post(client, url, body, token)
        assert (response.status_code, response.json()["code"]) == (401, "token_invalid"), url
    assert post(client, other_quality, body, other_token).status_code == 200
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


def test_a_deactivated_tenant_ends_its_sessions_without_throttling_its_users(
    make_tenant: Any, client: Client
) -> None:
    """A valid token of a tenant deactivated since is refused as a revoked hash_id's is, not
    counted as a guess: behind one address (an office, a proxy), AUTH_FAILURE_LIMIT of its
    users, each stopped by one 401, left that address throttled on every call."""
    tenant, secret = make_tenant()
    _, other_secret = make_tenant("other")
    opened = [opened_urls(client, secret) for _ in range(3)]
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    body = {"selfie_image": data_uri(LIVE_JPG)}
    with override_settings(AUTH_FAILURE_LIMIT=2):
        for quality, _, token in opened:
            response = post(client, quality, body, token)
            assert (response.status_code, response.json().get("code")) == (401, "token_invalid")
        other = client.post("/sessions", {"hash_id": other_secret}, content_type="application/json")
        assert other.status_code == 201  # the address is not throttled
        guesses = [post(client, opened[0][0], body, "not-the-token") for _ in range(3)]
        assert [r.status_code for r in guesses] == [401, 401, 429]  # guesses still count


def test_options_is_not_allowed_on_any_session_endpoint(make_tenant: Any, client: Client) -> None:
    """405 as /liveness answers it (never DRF's metadata); a CORS preflight still gets 204."""
    _, secret = make_tenant()
    quality, selfie, _ = opened_urls(client, secret)
    session = quality.removesuffix("/quality")
    challenge = f"{session}/challenge"
    liveness = client.options("/liveness")
    assert liveness.status_code == 405
    for url in ("/sessions", session, quality, challenge, selfie):
        response = client.options(url)
        assert response.status_code == 405, url
        assert response.json() == {"error": 'Method "OPTIONS" not allowed.'}, url
        assert "OPTIONS" not in response["Allow"], url
    for url in (quality, challenge, selfie):
        preflight = client.options(
            url, HTTP_ORIGIN="https://app.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
        assert preflight.status_code == 204, url
    for url in ("/sessions", session):  # the hash_id calls: never cross-origin
        preflight = client.options(
            url, HTTP_ORIGIN="https://app.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
        assert preflight.status_code == 405, url


def test_quality_frames_the_component_sends_pass(make_tenant: Any, client: Client) -> None:
    """The limits leave what capture.js sends alone: a 480 px portrait frame at quality 0.8."""
    _, secret = make_tenant()
    quality, _, token = opened_urls(client, secret)
    image = cv2.imread(str(LIVE_JPG))
    assert image is not None
    portrait = cv2.resize(image, (480, 853))
    ok, data = cv2.imencode(".jpg", portrait, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    response = post(client, quality, {"selfie_image": jpeg_uri(data.tobytes())}, token)
    assert response.status_code == 200 and response.json()["height"] == 853
