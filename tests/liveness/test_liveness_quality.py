"""/liveness refuses images it cannot judge with 422 and a code, gives the quota unit back,
and records the reason; tenants on the thorough profile get the second opinion."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from accounts.models import Tenant
from bench.finer_decode import wide_frame
from bench.no_face_decode import placed
from liveness.models import LivenessCheck
from liveness.runtime import get_engine
from ml.quality import REFUSALS
from tests.conftest import DEV_DATA, LIVE_JPG, SPOOF_JPG, Post, b64, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")
FRONTAL = DEV_DATA / "live" / "jomariya_2.jpg"


def jpeg(image: np.ndarray) -> str:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return b64(buffer.tobytes())


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def frontal() -> np.ndarray:
    return read(FRONTAL)


def grey(image: np.ndarray) -> np.ndarray:
    """What a monochrome (IR) camera sends: one intensity in three equal channels."""
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


GENERATED: dict[str, Callable[[], np.ndarray]] = {
    "multiple_faces": lambda: np.hstack([frontal(), frontal()]),
    "face_too_close": lambda: read(DEV_DATA / "live" / "wolf_1.png"),
    "too_dark": lambda: (frontal() * 0.2).astype(np.uint8),
    "overexposed": lambda: (255 - (255 - frontal().astype(np.float32)) * 0.2).astype(np.uint8),
    "too_blurry": lambda: cv2.GaussianBlur(frontal(), (0, 0), 8),
    "no_colour": lambda: grey(frontal()),
}


@pytest.mark.parametrize("code", sorted(GENERATED))
def test_refusal_has_a_code_and_costs_no_quota(
    make_tenant: Any, post_liveness: Post, code: str
) -> None:
    # face crops are judged by default; a tenant that refuses them gets face_too_close
    tenant, secret = make_tenant(request_limit=1, crop_policy="refuse")
    response = post_liveness({"hash_id": secret, "selfie_image": jpeg(GENERATED[code]())})
    assert response.status_code == 422
    assert response.json() == {"error": REFUSALS[code], "code": code}
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    check = LivenessCheck.objects.get(tenant=tenant)
    assert (check.refused_code, check.is_live, check.score) == (code, None, None)
    # The unit given back is still there for a judgeable selfie.
    ok = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert ok.status_code == 201


JOMARIYA = [DEV_DATA / "live" / f"jomariya_{n}.jpg" for n in range(1, 7)]


def test_grey_selfies_of_live_people_are_refused_not_judged(
    make_tenant: Any, post_liveness: Post
) -> None:
    """The models were trained on colour: these six live faces, grey, were judged spoof
    (0.011-0.326) and each spent a unit. In colour, or half desaturated, they are judged."""
    tenant, secret = make_tenant("kiosk")
    for path in JOMARIYA:
        refused = post_liveness({"hash_id": secret, "selfie_image": jpeg(grey(read(path)))})
        assert refused.status_code == 422, path.name
        assert refused.json() == {"error": REFUSALS["no_colour"], "code": "no_colour"}
    tenant.refresh_from_db()
    assert tenant.requests_used == 0
    for path in JOMARIYA:
        image = read(path)
        for judged in (image, cv2.addWeighted(image, 0.5, grey(image), 0.5, 0)):
            response = post_liveness({"hash_id": secret, "selfie_image": jpeg(judged)})
            assert response.status_code == 201, path.name
            assert response.json()["liveness_result"]["is_live"] == 1, path.name
    tenant.refresh_from_db()
    assert tenant.requests_used == 2 * len(JOMARIYA)
    refused_codes = LivenessCheck.objects.filter(tenant=tenant).values_list("refused_code")
    assert sorted(code for (code,) in refused_codes) == [""] * 12 + ["no_colour"] * 6


def encoded(ext: str, image: np.ndarray) -> str:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return b64(buffer.tobytes())


# Greyscale files (one channel), as a monochrome camera or a greyscale export writes them.
GREY_FILES: dict[str, Callable[[np.ndarray], str]] = {
    "png": lambda mono: encoded(".png", mono),
    "jpeg": lambda mono: encoded(".jpg", mono),
    "png-16bit": lambda mono: encoded(".png", mono.astype(np.uint16) * 257),
}


@pytest.mark.parametrize("kind", list(GREY_FILES))
def test_greyscale_files_are_refused_no_colour(
    make_tenant: Any, post_liveness: Post, kind: str
) -> None:
    """A greyscale file decodes to three equal channels: apfol_1.png scored 0.61 in colour,
    0.11 greyscale (a spoof verdict, a unit spent)."""
    tenant, secret = make_tenant(f"grey-{kind}")
    mono = cv2.cvtColor(read(DEV_DATA / "live" / "apfol_1.png"), cv2.COLOR_BGR2GRAY)
    response = post_liveness({"hash_id": secret, "selfie_image": GREY_FILES[kind](mono)})
    assert (response.status_code, response.json()["code"]) == (422, "no_colour")
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


def test_fast_is_the_default_profile(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    assert tenant[0].profile == "fast"
    response = post_liveness({"hash_id": tenant[1], "selfie_image": data_uri(LIVE_JPG)})
    assert response["X-Liveness-Profile"] == "fast"


@pytest.mark.parametrize(("path", "is_live"), [(LIVE_JPG, 1), (SPOOF_JPG, 0)])
def test_thorough_tenant_gets_the_contract_body(
    make_tenant: Any, post_liveness: Post, path: Any, is_live: int
) -> None:
    _, secret = make_tenant("careful", profile="thorough")
    response = post_liveness({"hash_id": secret, "selfie_image": data_uri(path)})
    assert response.status_code == 201
    assert response["X-Liveness-Profile"] == "thorough"
    body = response.json()
    assert set(body) == {"liveness_result", "message"}
    assert set(body["liveness_result"]) == {"is_live", "liveness_score"}
    assert body["liveness_result"]["is_live"] == is_live


WOLF_CROP = DEV_DATA / "live" / "wolf_1.png"  # a dev face crop: the face fills the image


def tight_crop() -> np.ndarray:
    """A crop tighter than YuNet's box: it touches every edge (face_cut_off as well)."""
    image = frontal()
    x, y, w, h = (int(v) for v in get_engine().detect(image).box)
    return image[y + h // 20 : y + h - h // 20, x : x + w]


@pytest.mark.parametrize("policy", ["judge", "refuse"])
def test_crop_policy_over_http(make_tenant: Any, post_liveness: Post, policy: str) -> None:
    tenant, secret = make_tenant(f"crops-{policy}", crop_policy=policy)
    for image in (data_uri(WOLF_CROP), jpeg(tight_crop())):
        response = post_liveness({"hash_id": secret, "selfie_image": image})
        if policy == "refuse":
            assert response.status_code == 422
            assert response.json() == {
                "error": REFUSALS["face_too_close"],
                "code": "face_too_close",
            }
            assert "X-Liveness-Capture" not in response
            continue
        assert response.status_code == 201
        assert response["X-Liveness-Capture"] == "crop"
        body = response.json()
        assert set(body) == {"liveness_result", "message"} and body["message"] == "Success"
        assert set(body["liveness_result"]) == {"is_live", "liveness_score"}
    tenant.refresh_from_db()
    assert tenant.requests_used == (2 if policy == "judge" else 0)
    checks = LivenessCheck.objects.filter(tenant=tenant)
    expected = {("crop", "")} if policy == "judge" else {("", "face_too_close")}
    assert {(c.capture, c.refused_code) for c in checks} == expected


def test_full_frame_is_marked_frame(tenant: tuple[Tenant, str], post_liveness: Post) -> None:
    assert tenant[0].crop_policy == "judge"  # the default, as in the product we replace
    response = post_liveness({"hash_id": tenant[1], "selfie_image": data_uri(LIVE_JPG)})
    assert response.status_code == 201
    assert response["X-Liveness-Capture"] == "frame"
    assert LivenessCheck.objects.get(tenant=tenant[0]).capture == "frame"


def test_other_gates_still_refuse_under_judge(make_tenant: Any, post_liveness: Post) -> None:
    _, secret = make_tenant("judge-dark")
    dark = (read(WOLF_CROP) * 0.2).astype(np.uint8)
    response = post_liveness({"hash_id": secret, "selfie_image": jpeg(dark)})
    assert response.status_code == 422 and response.json()["code"] == "too_dark"


def test_a_wide_jpeg_is_judged_as_its_png(make_tenant: Any, post_liveness: Post) -> None:
    """A dev selfie in a 1920x540 frame: the JPEG is decoded at 1/4 (480x135), its face 39 px,
    and was refused 422 face_too_small while the same frame as PNG was judged live (201). The
    engine decodes it again at 1/2 (78 px) and judges that: both 201, live, scores within
    JPEG noise, one unit each, no refusal recorded."""
    tenant, secret = make_tenant("wide-frame")
    frame = wide_frame(read(LIVE_JPG), 1920, 540)
    scores = []
    for ext in (".jpg", ".png"):
        response = post_liveness({"hash_id": secret, "selfie_image": encoded(ext, frame)})
        assert response.status_code == 201, (ext, response.content)
        assert response["X-Liveness-Capture"] == "frame"
        result = response.json()["liveness_result"]
        assert result["is_live"] == 1, ext
        scores.append(result["liveness_score"])
    assert scores[0] == pytest.approx(scores[1], abs=0.02)
    tenant.refresh_from_db()
    assert tenant.requests_used == 2
    assert not LivenessCheck.objects.filter(tenant=tenant).exclude(refused_code="").exists()


@pytest.mark.parametrize(("side", "status"), [(80, 422), (400, 201)])
def test_a_large_jpeg_finds_the_faces_its_png_finds(
    make_tenant: Any, post_liveness: Post, side: int, status: int
) -> None:
    """A dev selfie placed in a 4000x3000 frame, its face ``side`` px: the JPEG is decoded at
    1/8 (its face 10 or 50 px), the PNG whole. YuNet sees both at 320 px on the longer side, so
    both find the same: an 80 px face is no face in either (422 no_face, no unit), a 400 px one
    is judged in both (201, its JPEG decoded again finer for face_too_small)."""
    tenant, secret = make_tenant("large-frame")
    photo = read(LIVE_JPG)
    face = get_engine().detect(photo)
    frame = placed(photo, side / min(face.box[2:]), 4000, 3000)
    assert frame is not None
    for ext in (".jpg", ".png"):
        response = post_liveness({"hash_id": secret, "selfie_image": encoded(ext, frame)})
        assert response.status_code == status, (ext, response.content)
        if status == 422:
            assert response.json()["code"] == "no_face", ext
    tenant.refresh_from_db()
    assert tenant.requests_used == (2 if status == 201 else 0)
