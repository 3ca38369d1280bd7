"""How each profile turns the registry's models (``ml.registry``) into P(live): the engine's
configuration.

A profile is a list of (model, weight) per capture kind, and its fused score is the weighted
mean of the models' logits, logit(p) = ln(p / (1 - p)) with p clipped to [EPS, 1 - EPS]. In
logit space one confident model is not averaged away: 0.999 next to two 0.5s fuses to 0.9 (a
probability mean says 0.67).

The shipped score map then gives P(live | capture kind) from the fused logit. Each capture kind
puts the fused logit at its own level (a face crop of a live person can score lower than a
full-frame attack), so one threshold cannot serve both. A map per profile and per kind,
P = sigmoid(a * z + b) (``Platt``), brings both kinds to one scale where 0.5 means the same.
The maps are plain data (``score_maps.json``, beside this module, fitted by
``ml.fit_score_maps``) with their provenance: the sources they were fitted on and the figures
measured leaving one source out. A tenant's own calibration starts from these maps
(``ml.calibration``). Plain Python, no Django.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

# Probabilities are clipped here before the logit: |logit| <= 6.9. DTN's P(live) is a clipped
# linear map that often reads exactly 0 or 1; an unclipped logit would be infinite.
EPS = 1e-3
CAPTURES = ("frame", "crop")  # full camera frame, or a face crop (ml.quality.capture_of)

Weights = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Profile:
    """Weights for a full camera frame and (when they differ) for a face crop."""

    frame: Weights
    crop: Weights | None = None
    summary: str = ""  # what a tenant's profile choice says (accounts.Tenant.profile)

    @property
    def models(self) -> list[str]:
        return [name for name, _ in self.frame]

    def weights(self, capture: str = "frame") -> Weights:
        return self.crop if capture == "crop" and self.crop is not None else self.frame


# Why the crop weights differ (shared/models/NOTICE.md and ml.minifasnet.crop_box): on a face
# crop the frame allows less than 1.5x the face, so both MiniFASNet crops (2.7x and 4x) are
# clamped to the same scale: the two see the same pixels and are one opinion, not two. On a
# crop the pair therefore votes once (half a weight each) beside HyperFAS, the model that
# judges tight crops; on a full frame their crops differ and each model has one vote. No
# weight was tuned on the dev set (too small, and dominated by one inverted source).
PROFILES: dict[str, Profile] = {
    # the MiniFASNet pair + HyperFAS: on the sealed 12-source set the mean logit of the three
    # pooled AUC 0.80 where the pair alone had 0.75 (NOTICE.md)
    "fast": Profile(
        frame=(("minifasnet_v2", 1.0), ("minifasnet_v1se", 1.0), ("hyperfas", 1.0)),
        crop=(("minifasnet_v2", 0.5), ("minifasnet_v1se", 0.5), ("hyperfas", 1.0)),
        summary="MiniFASNet pair + HyperFAS",
    ),
    # the same + DTN (print and replay), one vote. Weighing DTN like the whole pair gave the
    # same dev AUC but let DTN's confident misses on live faces (e.g. live/minivision_1.jpg,
    # attack score 0.77) drag a certain live verdict down.
    "thorough": Profile(
        frame=(
            ("minifasnet_v2", 1.0),
            ("minifasnet_v1se", 1.0),
            ("hyperfas", 1.0),
            ("dtn", 1.0),
        ),
        crop=(
            ("minifasnet_v2", 0.5),
            ("minifasnet_v1se", 0.5),
            ("hyperfas", 1.0),
            ("dtn", 1.0),
        ),
        summary="MiniFASNet pair + HyperFAS + DTN (slower)",
    ),
}
# `fast`, not `thorough`: held out by source on dev and the clips, with the shipped score maps
# (ml/score_maps.json), thorough's ACER is the same (0.174 against 0.176) and its AUC a little
# higher (0.930 against 0.906), better on crops and worse on frames by one or two images each,
# while an image costs 3.5-4.0x the CPU time (70-75 ms against 18-20 ms, python -m
# bench.pipeline --profile, three back-to-back pairs). A tenant can choose it in the admin.
DEFAULT_PROFILE = "fast"


def profile_choices() -> list[tuple[str, str]]:
    """The choices of a tenant's profile (a callable: a new profile needs no migration)."""
    return [(name, f"{name}: {profile.summary}") for name, profile in PROFILES.items()]


def models_of(profiles: Mapping[str, Profile] = PROFILES) -> list[str]:
    """Every model some profile uses, in first-use order."""
    return list(dict.fromkeys(name for profile in profiles.values() for name in profile.models))


def logit(p: float) -> float:
    p = min(max(p, EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


def exact_logit(p: float) -> float:
    """ln(p / (1 - p)) unclipped: -inf at 0 and inf at 1. For distances from a threshold,
    where clipping at EPS would put 0.9998 and a threshold of 1.0 at one point (both 6.9)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p) - math.log1p(-p)


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def fused_logit(scores: Mapping[str, float], weights: Weights) -> float:
    """Weighted mean of the models' logits."""
    total = sum(weight for _, weight in weights)
    return sum(logit(scores[name]) * weight for name, weight in weights) / total


def fuse(scores: Mapping[str, float], profile: Profile, capture: str = "frame") -> float:
    """P(live): the sigmoid of the weighted mean logit for this kind of capture."""
    return sigmoid(fused_logit(scores, profile.weights(capture)))


@dataclass(frozen=True)
class Platt:
    """A map from the fused logit z to P(live): sigmoid(a * z + b); the identity by default."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, z: np.ndarray | float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * np.asarray(z, np.float64) + self.b)))

    def p(self, z: float) -> float:
        """Calibrated P(live) of one fused logit (the service's hot path: no numpy)."""
        return sigmoid(self.a * z + self.b)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


SCORE_MAPS = Path(__file__).with_name("score_maps.json")


class ScoreMaps(TypedDict):
    """The shipped file's content."""

    maps: dict[str, dict[str, dict[str, float]]]  # {profile: {kind: {"a", "b"}}}
    provenance: dict[str, Any]  # how they were fitted (ml.fit_score_maps writes it)


@cache
def score_maps(path: Path = SCORE_MAPS) -> ScoreMaps:
    maps: ScoreMaps = json.loads(path.read_text())
    return maps


def fitting_sources() -> frozenset[str]:
    """The sources the shipped score maps were fitted on (ml/score_maps.json's provenance):
    those with an image the fit used, of either capture kind; none from a file without one."""
    found = (score_maps().get("provenance") or {}).get("sources") or {}
    kinds = ("frame", "crop", "app-cut crop")
    return frozenset(
        name
        for name, counts in found.items()
        if any(sum((counts.get(k) or {}).values()) for k in kinds)
    )


def shipped(profile: str, capture: str) -> Platt:
    """The shipped map of ``profile`` for ``capture`` ("frame" or "crop"); the identity where
    the file has none (a profile added after the last fit)."""
    entry = score_maps()["maps"].get(profile, {}).get(capture)
    return Platt(float(entry["a"]), float(entry["b"])) if entry else Platt()


def shipped_maps(profile: str) -> dict[str, Platt]:
    """The shipped map of ``profile`` for each capture kind."""
    return {kind: shipped(profile, kind) for kind in CAPTURES}


# What fingerprint() covers: a tenant's calibration is a map of the fused logit, so it holds
# only while every declared input of that logit is as it was when it was fitted.
FINGERPRINT_LENGTH = 16  # hex digits of a SHA-256: 64 bits, no collision among a few upgrades


@cache
def fingerprint(profile: str) -> str:
    """A short digest of what makes ``profile``'s fused logit, from declared data only (no
    engine, no model file read): each of its models and the face detector (expected sha256,
    preparation, precision hint, how it is built, crop scale included, and its module's
    top-level constants: input size, HyperFAS's crop scale, DTN's score span), the fusion
    weights per capture kind, the logit's clip and the default face-crop bound that picks the
    kind. A tenant calibration fitted under another fingerprint is not applied
    (accounts.models.Tenant). Not covered: the shipped score maps (a tenant's map replaces
    them, taking them only as its prior) and the deployment's own settings (ENGINE_PRECISION,
    LIVENESS_QUALITY)."""
    from ml import quality, registry  # openvino and cv2 (0.12 s): not in every importer

    chosen = PROFILES[profile]
    names = list(dict.fromkeys(name for kind in CAPTURES for name, _ in chosen.weights(kind)))
    declared = {
        "eps": EPS,
        "min_context": quality.QualityThresholds().min_context,
        "weights": {kind: chosen.weights(kind) for kind in CAPTURES},
        "models": {
            spec.ir: _declared(spec)
            for spec in (registry.DETECTOR, *(registry.CLASSIFIERS[n] for n in names))
        },
    }
    text = json.dumps(declared, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def scoring_digest(profile: str, path: Path = SCORE_MAPS) -> str:
    """``fingerprint(profile)`` with the profile's shipped score maps (``path``): what makes
    an uncalibrated check's liveness_score. A threshold read off scores made under another
    digest (an upgrade's models or maps) does not hold for today's scores."""
    maps = score_maps(path)["maps"].get(profile, {})
    text = json.dumps({"models": fingerprint(profile), "maps": maps}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def _declared(spec: Any) -> dict[str, Any]:
    """One ``ml.registry.ModelSpec`` as declared data."""
    build = spec.build
    func = build.func if isinstance(build, partial) else build
    module = inspect.getmodule(func) if func is not None else _detector_module()
    return {
        "sha256": spec.sha256,
        "prepare": spec.prepare_step,
        "precision": spec.precision,
        "build": getattr(func, "__qualname__", ""),
        "arguments": dict(build.keywords) if isinstance(build, partial) else {},
        "constants": _constants(module),
    }


def _detector_module() -> Any:
    from ml import yunet

    return yunet


def _constants(module: Any) -> dict[str, Any]:
    """A module's top-level upper-case numbers, strings and tuples of them."""
    return {
        name: value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, int | float | str | tuple)
    }
