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


def _encoded(image: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return np.asarray(buffer).tobytes()


def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF APP1 segment after SOI whose only tag is its orientation."""
    ifd = b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01" + bytes([0, orientation, 0, 0])
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + ifd + b"\x00\x00\x00\x00"
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def _report(client: Client, secret: str, data: bytes) -> dict[str, Any]:
    opened = open_session(client, secret)
    url, token = f"/sessions/{opened['session_id']}/quality", opened["token"]
    response = post(client, url, {"selfie_image": b64(data)}, token)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _box(body: dict[str, Any]) -> np.ndarray:
    assert body["face"] is not None, body
    return np.array([body["face"][k] for k in "xywh"])


@pytest.mark.parametrize(
    ("size", "reduction"), [((768, 1024), 2), ((960, 1080), 2), ((1920, 540), 4)]
)
def test_quality_answers_in_the_frame_s_pixels(
    make_tenant: Any, client: Client, settings: Any, size: tuple[int, int], reduction: int
) -> None:
    """A JPEG with a long side of 960 px or more is decoded reduced (ml.decode); its report is
    still in the frame's pixels: the size sent, and the box the same frame's PNG (decoded
    whole) reports, within the reduced decode's rounding. It was the reduced decode's: a
    960x1080 JPEG reported 480x540 and a box half the PNG's."""
    settings.SESSION_QUALITY_MAX_BYTES = 8 * 1024 * 1024  # a PNG of a megapixel
    _, secret = make_tenant()
    width, height = size
    photo = cv2.imread(str(LIVE_JPG))
    assert photo is not None
    side = min(width / photo.shape[1], height / photo.shape[0])
    face = cv2.resize(photo, (round(photo.shape[1] * side), round(photo.shape[0] * side)))
    frame = np.full((height, width, 3), 128, np.uint8)
    left = (width - face.shape[1]) // 2
    frame[: face.shape[0], left : left + face.shape[1]] = face
    jpeg = _report(client, secret, _encoded(frame, ".jpg"))
    png = _report(client, secret, _encoded(frame, ".png"))
    assert (jpeg["width"], jpeg["height"]) == (png["width"], png["height"]) == size
    assert np.abs(_box(jpeg) - _box(png)).max() <= 2 * reduction, (jpeg["face"], png["face"])
    assert _box(png)[2] > 0.15 * height  # the face is the frame's, not a reduced one's
    # The same gates: the 1920x540 JPEG's face, 39 px at 1/4, failed face_too_small where the
    # PNG's 157 px passed; it is now measured on a decode at 1/2 (ml.engine, _gated).
    assert (jpeg["passed"], jpeg["failures"]) == (png["passed"], png["failures"]) == (True, [])


def test_quality_reports_a_rotated_jpeg_as_displayed(
    make_tenant: Any, client: Client, settings: Any
) -> None:
    """EXIF orientation 6 (rotate 90 degrees clockwise to display): cv2 applies it, to a
    reduced decode too, so the report is of the displayed frame, width and height swapped from
    the file's header, the box where the same displayed frame's PNG has it."""
    settings.SESSION_QUALITY_MAX_BYTES = 8 * 1024 * 1024
    _, secret = make_tenant()
    photo = cv2.imread(str(LIVE_JPG))
    assert photo is not None
    upright = cv2.resize(photo, (768, 1024))  # displayed 768x1024
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # the file's 1024x768
    jpeg = _report(client, secret, _with_orientation(_encoded(stored, ".jpg"), 6))
    png = _report(client, secret, _encoded(upright, ".png"))
    assert (jpeg["width"], jpeg["height"]) == (png["width"], png["height"]) == (768, 1024)
    assert np.abs(_box(jpeg) - _box(png)).max() <= 4, (jpeg["face"], png["face"])


def test_quality_reports_a_480_px_frame_as_decoded(make_tenant: Any, client: Client) -> None:
    """The component's own 480 px frames are decoded whole: as before."""
    _, secret = make_tenant()
    data = LIVE_JPG.read_bytes()
    body = _report(client, secret, data)
    photo = cv2.imread(str(LIVE_JPG))
    assert photo is not None
    assert (body["width"], body["height"]) == (photo.shape[1], photo.shape[0]) == (480, 640)
    png = _report(client, secret, _encoded(photo, ".png"))
    assert np.abs(_box(body) - _box(png)).max() <= 1.0
