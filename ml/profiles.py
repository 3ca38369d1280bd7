"""Which models exist and how each profile fuses them: the engine's configuration.

Adding a model is one class implementing ``ml.classifier.LivenessModel`` and one line in
``MODELS`` (plus its file in ``ml.install.MODEL_FILES``); a profile is a list of
(model, weight) and its P(live) is the weighted mean of the models' P(live).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import openvino as ov

from ml.classifier import LivenessModel
from ml.dtn import DTN
from ml.minifasnet import MiniFASNet


@dataclass(frozen=True)
class ModelSpec:
    ir: str  # IR base name in MODEL_DIR
    build: Callable[[ov.CompiledModel], LivenessModel]
    # "f32" keeps scores identical across CPUs; "bf16" is used where the CPU has it (f32
    # elsewhere) for a model whose dev AUC does not move with it (README, "Profiles").
    precision: str = "f32"


MODELS: dict[str, ModelSpec] = {
    "minifasnet_v2": ModelSpec("minifasnet_v2", partial(MiniFASNet, scale=2.7)),
    "minifasnet_v1se": ModelSpec("minifasnet_v1se", partial(MiniFASNet, scale=4.0)),
    "dtn": ModelSpec("dtn", DTN, precision="bf16"),
}

Profile = tuple[tuple[str, float], ...]
PROFILES: dict[str, Profile] = {
    # the MiniFASNet pair, averaged: the reference pipeline of NOTICE.md
    "fast": (("minifasnet_v2", 1.0), ("minifasnet_v1se", 1.0)),
    # DTN's P(live) averaged with the two MiniFASNets', one vote each. Weighing DTN like the
    # whole pair gave the same dev AUC but let DTN's confident misses on live faces (e.g.
    # live/minivision_1.jpg, attack score 0.77) drag a certain live verdict down to 0.5.
    "thorough": (("minifasnet_v2", 1.0), ("minifasnet_v1se", 1.0), ("dtn", 1.0)),
}
DEFAULT_PROFILE = "fast"


def models_of(profiles: Mapping[str, Profile] = PROFILES) -> list[str]:
    """Every model some profile uses, in first-use order."""
    return list(dict.fromkeys(name for profile in profiles.values() for name, _ in profile))


def fuse(scores: Mapping[str, float], profile: Profile) -> float:
    """Weighted mean of the profile's models' P(live)."""
    total = sum(weight for _, weight in profile)
    return sum(scores[name] * weight for name, weight in profile) / total
