"""Models behind one interface; logit fusion; the thorough profile (pair + HyperFAS + DTN)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from ml import dtn as dtn_module
from ml.compilation import compile_model
from ml.dtn import DTN, attack_score, p_live_of, square_box
from ml.engine import LivenessEngine
from ml.profiles import EPS, PROFILES, Profile, fuse, fused_logit, logit, models_of
from ml.registry import CLASSIFIERS, MODEL_FILES
from tests.ml.conftest import MODEL_SOURCE

REFERENCE = [
    ("live/minivision_1.jpg", True),
    ("spoof/minivision_2.jpg", False),
    ("spoof/minivision_3.jpg", False),
]


@pytest.mark.parametrize(("name", "is_live"), REFERENCE)
def test_thorough_profile_keeps_the_reference_verdicts(
    engine: LivenessEngine, dev_image: Callable[[str], bytes], name: str, is_live: bool
) -> None:
    fast = engine.check(dev_image(name))
    thorough = engine.check(dev_image(name), profile="thorough")
    assert (thorough.profile, fast.profile) == ("thorough", "fast")
    assert set(thorough.scores) == {"minifasnet_v2", "minifasnet_v1se", "hyperfas", "dtn"}
    assert thorough.box == fast.box
    for model, score in fast.scores.items():
        assert thorough.scores[model] == pytest.approx(score, abs=1e-6)
    mean_logit = np.mean([logit(p) for p in thorough.scores.values()])
    assert thorough.logit == pytest.approx(mean_logit)
    assert (thorough.p_live >= 0.5) is is_live


def test_dtn_sees_the_replay_attack(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    verdict = engine.check(dev_image("spoof/minivision_3.jpg"), profile="thorough")
    assert verdict.scores["dtn"] < 0.5


def test_dtn_uint8_graph_matches_the_tflite(
    engine: LivenessEngine, model_dir: Path, dev_image: Callable[[str], bytes]
) -> None:
    """The installed IR casts and scales inside the graph: same outputs as the original file
    fed float RGB / 255 by hand (both in f32)."""
    core = ov.Core()
    installed = DTN(compile_model(core, model_dir / "dtn.xml", 1))
    original = DTN(compile_model(core, MODEL_SOURCE / "dtn/FaceAntiSpoofing.tflite", 1))
    assert (installed.u8, original.u8) == (True, False)
    image = engine.decode(dev_image("live/jomariya_3.jpg"))
    x, y, w, h = (int(v) for v in engine.detect(image).box)
    box = (x, y, w, h)
    ours = installed.infer(installed.preprocess(image, box))
    theirs = original.infer(original.preprocess(image, box))
    np.testing.assert_allclose(ours[0], theirs[0], atol=1e-4)
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert ours[1].sum() == 1.0  # one leaf of the tree is active


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((100, 100, 50, 80), (85, 100, 165, 180)),  # width grown to the height, centred
        ((100, 100, 80, 50), (100, 85, 180, 165)),  # height grown to the width
        ((0, 10, 40, 100), (0, 10, 70, 110)),  # -30..70 clamped at the left edge
        ((150, 150, 60, 60), (150, 150, 199, 199)),  # clamped at the far edges
    ],
)
def test_dtn_square_crop(box: tuple[int, int, int, int], expected: tuple[int, ...]) -> None:
    assert square_box(200, 200, box) == expected


def test_dtn_score_mapping_is_monotone_and_keeps_its_threshold() -> None:
    assert p_live_of(dtn_module.ATTACK_THRESHOLD) == 0.5
    assert (p_live_of(0.0), p_live_of(0.4), p_live_of(3.0)) == (1.0, 0.0, 0.0)
    scores = np.linspace(0, 1, 50)
    assert np.all(np.diff([p_live_of(s) for s in scores]) <= 0)
    mask = np.eye(8)[3]
    assert attack_score(np.array([9, 9, 9, -0.3, 9, 9, 9, 9.0]), mask) == pytest.approx(0.3)


def test_profiles_are_configuration() -> None:
    installed = {m.ir for m in MODEL_FILES}
    assert all(CLASSIFIERS[name].ir in installed for name in models_of(PROFILES))
    assert models_of(PROFILES) == ["minifasnet_v2", "minifasnet_v1se", "hyperfas", "dtn"]
    assert PROFILES["fast"].models == ["minifasnet_v2", "minifasnet_v1se", "hyperfas"]


def test_each_profile_weighs_the_same_models_on_crops_and_frames() -> None:
    """The engine runs a profile's ``frame`` models (``Profile.models``) and, on a face crop,
    fuses their scores with the ``crop`` weights: a model only ``crop`` named would be a
    KeyError on every crop, one only ``frame`` named would run there for nothing."""
    for name, profile in PROFILES.items():
        crop = profile.weights("crop")
        assert sorted(model for model, _ in crop) == sorted(profile.models), name


def test_fusion_is_a_weighted_mean_of_logits() -> None:
    profile = Profile(frame=(("a", 3.0), ("b", 1.0)), crop=(("a", 1.0), ("b", 1.0)))
    assert fused_logit({"a": 0.9, "b": 0.5}, profile.frame) == pytest.approx(0.75 * math.log(9))
    # one confident model is not averaged away: 0.999 beside two 0.5s stays near 0.9
    assert fuse(
        {"a": 0.999, "b": 0.5, "c": 0.5}, Profile((("a", 1.0), ("b", 1.0), ("c", 1.0)))
    ) == pytest.approx(0.9, abs=0.01)
    # 0 and 1 are clipped: finite, symmetric
    assert fused_logit({"a": 1.0, "b": 0.0}, profile.frame) == pytest.approx(
        0.5 * math.log((1 - EPS) / EPS)
    )
    assert fuse({"a": 1.0, "b": 0.0}, profile, "crop") == pytest.approx(0.5)
    assert profile.weights("crop") == profile.crop and profile.weights("frame") == profile.frame
    assert Profile((("a", 1.0),)).weights("crop") == (("a", 1.0),)


def test_on_a_crop_the_pair_votes_once() -> None:
    """On a face crop both MiniFASNet crops are clamped to the same box: one opinion."""
    from ml.minifasnet import crop_box

    box = (10, 10, 180, 180)  # context (199 / 180) < 1.5
    assert crop_box(200, 200, box, 2.7) == crop_box(200, 200, box, 4.0)
    for name in ("fast", "thorough"):
        crop = dict(PROFILES[name].weights("crop"))
        assert crop["minifasnet_v2"] + crop["minifasnet_v1se"] == crop["hyperfas"]


class ConstantModel:
    """The smallest LivenessModel: adding a model is a class like this and a line of config."""

    def crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        x, y, w, h = box
        return image[y : y + h, x : x + w]

    def preprocess(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        return self.crop(image, box)

    def infer(self, blob: np.ndarray) -> float:
        return 0.25

    def postprocess(self, raw: float) -> float:
        return raw

    def p_live(self, image: np.ndarray, box: tuple[int, int, int, int]) -> float:
        return self.postprocess(self.infer(self.preprocess(image, box)))


def test_a_new_model_is_one_class_and_one_line(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    profiles = {**PROFILES, "custom": Profile((("minifasnet_v2", 1.0), ("constant", 1.0)))}
    custom = LivenessEngine(
        engine.detector, {**engine.models, "constant": ConstantModel()}, profiles=profiles
    )
    verdict = custom.check(dev_image("live/minivision_1.jpg"), profile="custom")
    assert verdict.scores["constant"] == 0.25
    expected = (logit(verdict.scores["minifasnet_v2"]) + logit(0.25)) / 2
    assert verdict.logit == pytest.approx(expected)
