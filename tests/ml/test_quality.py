"""Quality gates: each one refuses a real dev face made faulty in one way, and only that way.

The faulty images are generated here from dev images (never stored)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields

import cv2
import numpy as np
import pytest

from ml import quality
from ml.engine import LivenessEngine
from ml.errors import FaceRefused
from ml.quality import QualityThresholds
from ml.yunet import int_box
from tests.ml.conftest import DEV_DATA

FRONTAL = "live/jomariya_2.jpg"  # full camera frame, frontal face, passes every gate


@pytest.fixture(scope="module")
def frontal(engine: LivenessEngine, dev_image: Callable[[str], bytes]) -> np.ndarray:
    return engine.decode(dev_image(FRONTAL))


def refused_code(engine: LivenessEngine, image: np.ndarray, crop_policy: str = "judge") -> str:
    with pytest.raises(FaceRefused) as refused:
        engine.analyse(image, crop_policy=crop_policy)
    assert refused.value.message == quality.REFUSALS[refused.value.code]
    return refused.value.code


def only_failure(
    engine: LivenessEngine, image: np.ndarray, crop_policy: str = "judge"
) -> list[str]:
    return engine.inspect(image, crop_policy).failures


def face_box(engine: LivenessEngine, image: np.ndarray) -> tuple[int, int, int, int]:
    return int_box(engine.detect(image))


def test_untouched_full_frame_passes(engine: LivenessEngine, frontal: np.ndarray) -> None:
    assert only_failure(engine, frontal) == []
    assert 0.0 <= engine.analyse(frontal).p_live <= 1.0


def test_two_faces_of_the_same_size(engine: LivenessEngine, frontal: np.ndarray) -> None:
    two = np.hstack([frontal, frontal])
    assert only_failure(engine, two) == ["multiple_faces"]
    assert refused_code(engine, two) == "multiple_faces"


def test_tiny_face_on_a_canvas(engine: LivenessEngine, frontal: np.ndarray) -> None:
    small = cv2.resize(frontal, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[100 : 100 + small.shape[0], 200 : 200 + small.shape[1]] = small
    assert only_failure(engine, canvas) == ["face_too_small"]


def test_tight_face_crop(engine: LivenessEngine, frontal: np.ndarray) -> None:
    x, y, w, h = face_box(engine, frontal)
    tight = frontal[y - h // 10 : y + h + h // 10, x - w // 10 : x + w + w // 10]
    assert only_failure(engine, tight, "refuse") == ["face_too_close"]
    assert refused_code(engine, tight, "refuse") == "face_too_close"
    # judged by default: a verdict, and the engine knows it judged a crop
    assert only_failure(engine, tight) == []
    verdict = engine.analyse(tight)
    assert verdict.capture == "crop" and 0.0 <= verdict.p_live <= 1.0
    assert engine.inspect(tight).capture == "crop"


@pytest.mark.parametrize("name", ["live/wolf_1.png", "spoof/wolf_7.png", "live/vigu_1.png"])
def test_dev_face_crops_are_too_close(engine: LivenessEngine, name: str) -> None:
    image = engine.decode((DEV_DATA / name).read_bytes())
    assert refused_code(engine, image, "refuse") == "face_too_close"
    assert engine.analyse(image).capture == "crop"  # judged under the default policy


def test_a_crop_touching_its_edges_is_judged(engine: LivenessEngine, frontal: np.ndarray) -> None:
    """A crop tighter than the face box: face_cut_off too under refuse, neither under judge."""
    x, y, w, h = face_box(engine, frontal)
    tight = frontal[y + h // 20 : y + h - h // 20, x : x + w]
    failing = only_failure(engine, tight, "refuse")
    assert failing[0] == "face_too_close"
    assert only_failure(engine, tight) == [f for f in failing if f not in quality.CROP_EXEMPT]
    assert engine.inspect(tight).capture == "crop"


@pytest.mark.parametrize("side", ["left", "bottom"])
def test_face_cut_by_the_border(engine: LivenessEngine, frontal: np.ndarray, side: str) -> None:
    """The frame moved so a quarter of the face is outside it (same size, black fill)."""
    x, y, w, h = face_box(engine, frontal)
    cut = np.zeros_like(frontal)
    if side == "left":
        shift = x + w // 4
        cut[:, : frontal.shape[1] - shift] = frontal[:, shift:]
    else:
        shift = frontal.shape[0] - (y + 3 * h // 4)
        cut[shift:] = frontal[: frontal.shape[0] - shift]
    assert only_failure(engine, cut) == ["face_cut_off"]


def test_dark_face(engine: LivenessEngine, frontal: np.ndarray) -> None:
    dark = (frontal * 0.2).astype(np.uint8)
    assert only_failure(engine, dark) == ["too_dark"]


def test_overexposed_face(engine: LivenessEngine, frontal: np.ndarray) -> None:
    washed = (255 - (255 - frontal.astype(np.float32)) * 0.2).astype(np.uint8)
    assert only_failure(engine, washed) == ["overexposed"]


def test_blurred_face(engine: LivenessEngine, frontal: np.ndarray) -> None:
    side = engine.detect(frontal).box[2]  # blur in proportion to the face: size-independent
    assert only_failure(engine, cv2.GaussianBlur(frontal, (0, 0), side / 30)) == ["too_blurry"]
    # Mild blur still passes: the gate is for faces the classifiers cannot read.
    assert only_failure(engine, cv2.GaussianBlur(frontal, (0, 0), side / 200)) == []


def grey(image: np.ndarray) -> np.ndarray:
    """What a monochrome (IR) camera sends: one intensity in three equal channels."""
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def encoded(ext: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def test_grey_face(engine: LivenessEngine, frontal: np.ndarray) -> None:
    """The models were trained on colour: the grey of a live face was judged spoof (0.01-0.33
    on the dev jomariya faces), so it is refused rather than judged."""
    assert only_failure(engine, grey(frontal)) == ["no_colour"]
    assert refused_code(engine, grey(frontal)) == "no_colour"


def test_colour_measure_of_grey_and_colour_faces(
    engine: LivenessEngine, frontal: np.ndarray
) -> None:
    x, y, w, h = face_box(engine, frontal)
    face = frontal[y : y + h, x : x + w]
    threshold = QualityThresholds().min_colour
    mono = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    coded = [encoded(".jpg", grey(face), (cv2.IMWRITE_JPEG_QUALITY, q)) for q in (70, 95)]
    coded += [encoded(".png", mono), encoded(".jpg", mono), encoded(".png", mono * np.uint16(257))]
    assert [quality.colour_of(engine.decode(data)) for data in coded] == [0.0] * 5
    assert quality.colour_of(mono) == 0.0
    # A sensor's noise is not colour: sigma 5 in each channel reads 5.2 pixel by pixel.
    noise = np.random.default_rng(0).normal(0, 5, face.shape)
    noisy = np.clip(grey(face) + noise, 0, 255).astype(np.uint8)
    assert quality.colour_of(noisy) < threshold / 1.5
    # Colour, even half desaturated (blended with its own grey), stays well above it.
    assert quality.colour_of(face) > 4 * threshold
    half = cv2.addWeighted(face, 0.5, grey(face), 0.5, 0)
    assert quality.colour_of(half) == pytest.approx(quality.colour_of(face) / 2, rel=0.05)


def test_half_desaturated_face_is_judged(engine: LivenessEngine, frontal: np.ndarray) -> None:
    half = cv2.addWeighted(frontal, 0.5, grey(frontal), 0.5, 0)
    assert only_failure(engine, half) == []
    assert 0.0 <= engine.analyse(half).p_live <= 1.0


def test_colour_gate_refuses_every_grey_dev_image_and_no_colour_one(
    engine: LivenessEngine,
) -> None:
    """Every dev image, live and attack (print and replay photographed in colour), keeps its
    colour past the gate by a wide margin (smallest: 8.0, apfol_2); its grey reads 0 (and
    is refused no_colour wherever YuNet still finds the face in it)."""
    colour: dict[str, float] = {}
    refused = []
    for path in sorted(DEV_DATA.glob("*/*")):
        image = engine.decode(path.read_bytes())
        gates = engine.gates(image, engine.faces(image))
        if gates.face is None or gates.measures is None:
            continue  # no face (two dev crops): nothing to measure
        colour[f"{path.parent.name}/{path.name}"] = gates.measures.colour
        assert "no_colour" not in gates.failures, path.name
        x, y, w, h = int_box(gates.face)
        face = grey(image)[max(y, 0) : y + h, max(x, 0) : x + w]  # crops' boxes leave them
        assert quality.colour_of(face) == 0.0
        failures = engine.gates(grey(image), engine.faces(grey(image))).failures
        refused += [path.name] if "no_colour" in failures else []
        assert failures == ["no_face"] or "no_colour" in failures, (path.name, failures)
    assert len(colour) >= 80 and len(refused) >= 70
    assert min(colour.values()) > 4 * QualityThresholds().min_colour, min(colour.items())


def test_sharpness_does_not_depend_on_contrast(frontal: np.ndarray) -> None:
    """The dark gate, not the blur gate, answers a dark but sharp face."""
    face = frontal[350:820, 200:550]
    dim = (face * 0.3).astype(np.uint8)
    assert quality.sharpness_of(dim) == pytest.approx(quality.sharpness_of(face), rel=0.15)


def yaw_of_face(engine: LivenessEngine, image: np.ndarray) -> float:
    measures = engine.inspect(image).measures
    assert measures is not None
    return measures.yaw


def test_turned_head_from_the_landmarks(
    engine: LivenessEngine, frontal: np.ndarray, dev_image: Callable[[str], bytes]
) -> None:
    """spoof/minivision_2.jpg is a photo of a visibly turned face (it must pass the
    default gate: it is a reference verdict); jomariya_2 looks straight at the camera."""
    turned = engine.decode(dev_image("spoof/minivision_2.jpg"))
    yaw_turned = yaw_of_face(engine, turned)
    yaw_frontal = yaw_of_face(engine, frontal)
    assert yaw_frontal < 0.2 < 0.6 < yaw_turned < QualityThresholds().max_yaw
    # The mirror image is turned the other way by as much.
    assert yaw_of_face(engine, turned[:, ::-1].copy()) == pytest.approx(yaw_turned, abs=0.1)
    strict = LivenessEngine(engine.detector, engine.models, QualityThresholds(max_yaw=0.5))
    assert strict.inspect(turned).failures == ["head_turned"]
    assert refused_code(strict, turned) == "head_turned"
    assert strict.inspect(frontal).failures == []


@pytest.mark.parametrize(
    ("landmarks", "expected"),
    [
        (((40, 50), (60, 50), (50, 60), (42, 70), (58, 70)), 0.0),  # frontal
        (((40, 50), (60, 50), (60, 60), (42, 70), (58, 70)), 1.0),  # nose under the left eye
        (((40, 50), (60, 50), (45, 60), (42, 70), (58, 70)), -0.5),
        (((50, 40), (50, 60), (40, 55), (30, 42), (30, 58)), 0.5),  # rolled 90 degrees
    ],
)
def test_yaw_estimate(landmarks: tuple[tuple[float, float], ...], expected: float) -> None:
    assert quality.yaw_of(landmarks) == pytest.approx(expected)


def test_thresholds_from_settings() -> None:
    assert QualityThresholds.from_mapping({"max_yaw": "0.5"}).max_yaw == 0.5
    assert QualityThresholds.from_mapping(None) == QualityThresholds()
    with pytest.raises(ValueError, match="max_jaw"):
        QualityThresholds.from_mapping({"max_jaw": 0.5})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Every live selfie refused too_dark: no mean of 8-bit pixels reaches 300.
        ({"min_luma": 300}, "min_luma=300: expected 0 to 255"),
        ({"max_luma": -1}, "max_luma=-1: expected 0 to 255"),
        ({"min_luma": 300, "max_luma": 10}, "min_luma=300 must be below max_luma=10"),
        # Against the default max_luma 215: no luma is both >= 220 and <= 215.
        ({"min_luma": 220}, "min_luma=220 must be below max_luma=215"),
        ({"max_yaw": 0}, "max_yaw=0: expected above 0"),
        ({"max_other_face_ratio": 0}, "max_other_face_ratio=0: expected above 0"),
        ({"min_face_px": 5000}, "min_face_px=5000: expected 0 to 4096"),
        ({"min_sharpness": -1}, "min_sharpness=-1: expected at least 0"),
        ({"min_context": -0.5}, "min_context=-0.5: expected at least 0"),
        ({"min_border_gap": -2}, "min_border_gap=-2: expected at least -1"),
        # No face reaches 200: pure green or magenta, the most coloured, measures 191.1.
        ({"min_colour": 200}, "min_colour=200: expected 0 to 191"),
        ({"min_colour": -1}, "min_colour=-1: expected 0 to 191"),
    ],
)
def test_thresholds_out_of_range_are_refused(overrides: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        QualityThresholds.from_mapping(overrides)


def test_every_threshold_has_a_range_its_default_and_its_off_value_meet() -> None:
    assert set(quality.RANGES) == {f.name for f in fields(QualityThresholds)}
    assert QualityThresholds().out_of_range() == []
    # A gate turned off (it refuses no face) is the operator's choice, not a mistake.
    off: dict[str, float] = {"min_luma": 0, "max_luma": 255, "min_face_px": 0}
    off |= {"min_sharpness": 0, "min_colour": 0}
    off |= {"min_context": 0, "min_border_gap": -1, "max_other_face_ratio": 1.0}
    assert QualityThresholds.from_mapping(off).out_of_range() == []


def test_every_code_has_a_sentence() -> None:
    codes = set(quality.REFUSALS)
    measures = quality.QualityMeasures(1.0, 0.0, 0.0, -1.0, 9.0, 0.0, 0.0, 0.0)
    assert set(quality.failures(measures, QualityThresholds())) | {"no_face", "overexposed"} == (
        codes
    )
    assert all(text.endswith(".") for text in quality.REFUSALS.values())


def test_full_frame_live_dev_images_pass(engine: LivenessEngine) -> None:
    """The issue's bar: at most 1 in 10 well-framed live selfies refused (dev: none)."""
    names = sorted(
        p for p in (DEV_DATA / "live").iterdir() if p.name.startswith(("minivision", "jomariya"))
    )
    assert len(names) == 9
    refused = [p.name for p in names if engine.inspect(engine.decode(p.read_bytes())).failures]
    assert refused == []
