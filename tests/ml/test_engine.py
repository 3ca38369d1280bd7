"""The pipeline against the reference verdicts in shared/models/NOTICE.md and the YuNet oracle."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml import profiles
from ml.engine import LivenessEngine
from ml.errors import FaceRefused
from ml.minifasnet import crop_box
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
