"""The pipeline against the reference verdicts in shared/models/NOTICE.md and the YuNet oracle."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.finer_decode import wide_frame
from ml import profiles
from ml.decode import Frame, decode_frame
from ml.engine import Gates, LivenessEngine, finer_scale
from ml.errors import FaceRefused
from ml.minifasnet import crop_box
from ml.quality import QualityMeasures
from ml.yunet import Face, scaled
from tests.ml.conftest import DEV_DATA, MODEL_SOURCE

# NOTICE.md: fused MiniFASNet P(live) (mean of the pair's) and HyperFAS P(live) from the
# reference pipeline.
REFERENCE = [
    ("live/minivision_1.jpg", 0.9999, 0.992, True),
    ("spoof/minivision_2.jpg", 0.229, 0.018, False),
    ("spoof/minivision_3.jpg", 0.003, 0.994, False),
]


@pytest.mark.parametrize(("name", "pair", "hyperfas", "is_live"), REFERENCE)
def test_reference_verdicts(
    engine: LivenessEngine,
    dev_image: Callable[[str], bytes],
    name: str,
    pair: float,
    hyperfas: float,
    is_live: bool,
) -> None:
    verdict = engine.check(dev_image(name))
    assert verdict.capture == "frame"
    assert (verdict.p_live >= 0.5) is is_live
    pair_mean = (verdict.scores["minifasnet_v2"] + verdict.scores["minifasnet_v1se"]) / 2
    assert pair_mean == pytest.approx(pair, abs=0.05)
    assert verdict.scores["hyperfas"] == pytest.approx(hyperfas, abs=0.05)  # parity


def test_fused_score_is_the_frame_map_of_the_mean_logit(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    """The replay that HyperFAS misses (0.994) stays an attack: the pair's confident logits
    are not averaged away, and p_live is the shipped full-frame map of the stored fused logit
    (not its plain sigmoid: the map is fitted, ml/score_maps.json)."""
    verdict = engine.check(dev_image("spoof/minivision_3.jpg"))
    logits = [math.log(p / (1 - p)) for p in verdict.scores.values()]
    assert verdict.logit == pytest.approx(sum(logits) / 3, abs=1e-6)
    assert verdict.capture == "frame"
    entry = profiles.score_maps()["maps"][verdict.profile][verdict.capture]
    a, b = entry["a"], entry["b"]
    assert (a, b) != (1.0, 0.0)
    assert verdict.p_live == pytest.approx(1 / (1 + math.exp(-(a * verdict.logit + b))))
    assert verdict.p_live < 0.5


def test_exif_orientation_is_applied(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    # minivision_1 is stored sideways with EXIF Orientation=6; upright it is 480 wide.
    image = engine.decode(dev_image("live/minivision_1.jpg"))
    assert image.shape[:2] == (640, 480)


def test_verdict_carries_stage_timings(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    verdict = engine.check(dev_image("live/minivision_1.jpg"))
    assert set(verdict.timings_ms) == {"decode", "detect", "classify"}
    assert 0.6 <= verdict.face_score <= 1.0


def test_face_free_image_is_refused(engine: LivenessEngine) -> None:
    noise = np.random.default_rng(7).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    _, jpeg = cv2.imencode(".jpg", cv2.GaussianBlur(noise, (31, 31), 0))
    with pytest.raises(FaceRefused) as refused:
        engine.check(jpeg.tobytes())
    assert refused.value.code == "no_face"


def _dev_images() -> list[Path]:
    return sorted(p for p in DEV_DATA.glob("*/*") if p.suffix in {".jpg", ".png"})


def test_yunet_decoding_matches_opencv_oracle(engine: LivenessEngine) -> None:
    """Our numpy decoding and NMS give cv2.FaceDetectorYN's faces on the same network input."""
    detector = engine.detector
    oracle = cv2.FaceDetectorYN.create(
        str(MODEL_SOURCE / "yunet/face_detection_yunet_2023mar.onnx"),
        "",
        (detector.size, detector.size),
        detector.score_threshold,
        detector.nms_threshold,
        detector.top_k,
    )
    compared, shapes = 0, set()
    for path in _dev_images():
        blob, _ = detector.preprocess(engine.decode(path.read_bytes()))
        shapes.add(blob.shape[2:])
        oracle.setInputSize((blob.shape[3], blob.shape[2]))
        _, expected = oracle.detect(blob[0].transpose(1, 2, 0).astype(np.uint8))
        boxes, marks, scores = detector.decode(detector.infer(blob), blob.shape[2:])
        keep = detector.nms(boxes, scores)
        ours = np.concatenate([boxes[keep], marks[keep], scores[keep, None]], axis=1)
        expected = np.zeros((0, 15)) if expected is None else expected
        assert ours.shape == expected.shape, path.name
        np.testing.assert_allclose(ours, expected, atol=0.05, err_msg=path.name)
        compared += len(keep)
    assert compared >= 70
    assert len(shapes) >= 3  # square, landscape and portrait inputs all exercised


def test_largest_face_is_judged(engine: LivenessEngine, dev_image: Callable[[str], bytes]) -> None:
    """Two faces side by side, one at half size: the verdict's box is the large one's."""
    face = engine.decode(dev_image("live/minivision_1.jpg"))
    small = cv2.resize(face, None, fx=0.5, fy=0.5)
    canvas = np.zeros((face.shape[0], face.shape[1] + small.shape[1], 3), np.uint8)
    canvas[:, : face.shape[1]] = face
    canvas[: small.shape[0], face.shape[1] :] = small
    verdict = engine.analyse(canvas)
    assert verdict.box[0] + verdict.box[2] <= face.shape[1]


@pytest.mark.parametrize(
    ("box", "scale", "expected"),
    [
        ((100, 100, 50, 50), 2.0, (75, 75, 175, 175)),  # grows about the centre
        ((0, 0, 50, 50), 2.0, (0, 0, 100, 100)),  # shifted back inside at the top left
        ((150, 150, 50, 50), 2.0, (99, 99, 199, 199)),  # and at the bottom right (inclusive edge)
        ((50, 50, 100, 100), 4.0, (0, 0, 199, 199)),  # scale capped by the image size
    ],
)
def test_crop_box(
    box: tuple[int, int, int, int], scale: float, expected: tuple[int, int, int, int]
) -> None:
    assert crop_box(200, 200, box, scale) == expected


def test_bf16_precision_keeps_the_reference_verdicts(
    model_dir: Path, dev_image: Callable[[str], bytes]
) -> None:
    """The faster precision an operator may choose gives the same verdicts (scores move a
    little, which is why f32 stays the default)."""
    fast = LivenessEngine.load(model_dir, precision="bf16")
    for name, pair, hyperfas, is_live in REFERENCE:
        verdict = fast.check(dev_image(name))
        assert (verdict.p_live >= 0.5) is is_live
        pair_mean = (verdict.scores["minifasnet_v2"] + verdict.scores["minifasnet_v1se"]) / 2
        assert pair_mean == pytest.approx(pair, abs=0.1)
        assert verdict.scores["hyperfas"] == pytest.approx(hyperfas, abs=0.1)


def _encoded(image: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize(("size", "first", "judged"), [((1920, 540), 4, 2), ((3840, 1080), 8, 4)])
def test_a_wide_jpeg_gets_the_gates_and_score_of_its_png(
    engine: LivenessEngine,
    dev_image: Callable[[str], bytes],
    size: tuple[int, int],
    first: int,
    judged: int,
) -> None:
    """A dev selfie in a wide frame: its JPEG is decoded reduced (1/4, 1/8: 480 px wide), where
    the face is under min_face_px (39 px), and was refused face_too_small while the same
    frame's PNG (decoded whole: a 157 px face) was judged live. The JPEG is decoded again at
    the coarsest reduction that keeps the face over the minimum, and judged there: the PNG's
    gates, capture and verdict, its score within JPEG noise (measured: 0.9912 against 0.9934,
    0.9797 against 0.9925), its box in the frame's pixels where the PNG's is."""
    photo = cv2.imdecode(np.frombuffer(dev_image("live/minivision_1.jpg"), np.uint8), 1)
    assert photo is not None
    frame = wide_frame(photo, *size)
    jpeg, png = _encoded(frame, ".jpg"), _encoded(frame, ".png")
    decoded = decode_frame(jpeg)
    assert decoded.scale == first
    reduced = engine.gates(decoded.image, engine.faces(decoded.image), "refuse")
    assert "face_too_small" in reduced.failures  # what the first decode alone decided
    at, _, gates = engine.gated(decoded, "refuse")
    whole, _, png_gates = engine.gated(decode_frame(png), "refuse")
    assert (at.scale, whole.scale) == (judged, 1)
    assert gates.failures == png_gates.failures == []
    assert gates.capture == png_gates.capture == "frame"
    assert gates.face is not None and png_gates.face is not None
    in_frame = np.array(gates.face.box) * at.scale
    assert np.abs(in_frame - np.array(png_gates.face.box)).max() <= 2 * judged
    from_jpeg, from_png = engine.check(jpeg), engine.check(png)
    assert from_jpeg.p_live >= 0.5 and from_png.p_live >= 0.5
    assert from_jpeg.p_live == pytest.approx(from_png.p_live, abs=0.02)
    assert from_jpeg.capture == from_png.capture


def test_no_dev_image_is_decoded_twice(
    engine: LivenessEngine, dev_image: Callable[[str], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second decode is for a face too small only for its reduction: none of the dev images
    has one (their faces are 73 px or more as decoded), so each is decoded, detected and
    gated once, and judged as before."""
    decoded_again: list[str] = []
    monkeypatch.setattr(Frame, "finer", lambda frame, scale: decoded_again.append(scale))
    names = sorted(
        str(path.relative_to(DEV_DATA))
        for path in DEV_DATA.rglob("*")
        if path.suffix in (".jpg", ".png")
    )
    assert len(names) > 80
    for name in names:
        engine.gated(decode_frame(dev_image(name)), "refuse")
    assert decoded_again == []


def _measured(face_px: float) -> QualityMeasures:
    return QualityMeasures(0.0, face_px, 3.0, 0.5, 0.1, 120.0, 20.0, 20.0)


@pytest.mark.parametrize(
    ("size", "scale", "face_px", "failures", "expected"),
    [
        ((1920, 540), 4, 39.0, ["face_too_small"], 2),  # 156 px whole: 78 at 1/2
        ((1920, 540), 4, 20.0, ["face_too_small"], 1),  # 80 px whole only
        ((1920, 540), 4, 15.0, ["face_too_small"], None),  # 60 px even whole: refused as is
        ((1920, 540), 4, 39.0, ["face_too_small", "too_dark"], 2),  # every gate judged finer
        ((1920, 540), 4, 70.0, [], None),  # passed: judged as decoded
        ((1920, 540), 4, 70.0, ["too_dark"], None),  # refused, but not for its size
        ((640, 480), 1, 39.0, ["face_too_small"], None),  # decoded whole already
        ((8000, 5000), 8, 20.0, ["face_too_small"], 2),  # 40 MP: 1/2 (10 MP) at the finest
        ((8000, 5000), 8, 12.0, ["face_too_small"], None),  # 48 px at 1/2: whole is 40 MP
    ],
)
def test_finer_scale(
    size: tuple[int, int],
    scale: int,
    face_px: float,
    failures: list[str],
    expected: int | None,
) -> None:
    frame = Frame(np.zeros((4, 4, 3), np.uint8), *size, scale, data=b"a JPEG")
    gates = Gates(None, _measured(face_px), failures, "frame")
    assert finer_scale(frame, gates, 64.0) == expected
    assert finer_scale(Frame.whole(frame.image), gates, 64.0) is None  # no file to decode again


def test_a_face_scaled_to_another_decode() -> None:
    """What a session's head-turn judge is given after a finer decode: the faces in the first
    decode's pixels, as every frame of that size (it compares sizes from frame to frame)."""
    face = Face((10.0, 20.0, 30.0, 40.0), ((11.0, 21.0), (31.0, 22.0), (20.0, 30.0)), 0.9)
    half = scaled(face, 0.5)
    assert half == Face((5.0, 10.0, 15.0, 20.0), ((5.5, 10.5), (15.5, 11.0), (10.0, 15.0)), 0.9)
    assert scaled(face, 1.0) == face
