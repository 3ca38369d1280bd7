"""YuNet's input scale on the dev set: the engine's detector (the image scaled to a longer
side of 320 px, ml.yunet) against the same code compiled at twice the size (640 px), with the
engine's classifiers, gates and score maps: verdicts that change, each score's largest move,
each model's dev AUC at both scales.

    python -m bench.detector_scale
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.images import DEV_DATA
from ml import pad_metrics
from ml.compilation import compile_model, make_core
from ml.engine import FACE_SCORE_FLOOR, LivenessEngine
from ml.install import default_model_dir
from ml.profiles import DEFAULT_PROFILE, shipped
from ml.registry import DETECTOR
from ml.yunet import INPUT_SHAPES, YuNet

THRESHOLD = 0.5  # a tenant's default (accounts.Tenant.threshold)


def judge(engine: LivenessEngine, image: np.ndarray) -> tuple[str, dict[str, float]]:
    """The first refusal or live/spoof at THRESHOLD, and each model's P(live) and the default
    profile's ("fused")."""
    seen = engine.inspect(image)
    if seen.face is None:
        return "no_face", {}
    fused = shipped(DEFAULT_PROFILE, seen.capture).p(seen.logit(DEFAULT_PROFILE))
    verdict = seen.failures[0] if seen.failures else ("live" if fused >= THRESHOLD else "spoof")
    return verdict, {**seen.scores, "fused": fused}


def at_scale(engine: LivenessEngine, model_dir: Path, factor: int) -> LivenessEngine:
    """``engine`` with its detector compiled at ``factor`` x its input shapes."""
    core = make_core(model_dir / "cache")
    shapes = [(factor * h, factor * w) for h, w in INPUT_SHAPES]
    compiled = {s: compile_model(core, model_dir / f"{DETECTOR.ir}.xml", 1, s) for s in shapes}
    detector = YuNet(compiled, score_threshold=FACE_SCORE_FLOOR)
    return LivenessEngine(detector, engine.models, engine.thresholds, background=engine.background)


def main() -> None:
    model_dir = default_model_dir()
    engine = LivenessEngine.load(model_dir)
    large = at_scale(engine, model_dir, 2)
    rows = []
    for path in sorted(DEV_DATA.glob("*/*")):
        if path.parent.name in ("live", "spoof"):
            image = engine.decode(path.read_bytes())
            rows.append((path, judge(engine, image), judge(large, image)))
    print(f"{len(rows)} dev images, YuNet at {engine.detector.size} vs {large.detector.size} px")
    changed = [(p, a[0], b[0]) for p, a, b in rows if a[0] != b[0]]
    print(f"verdicts changed: {len(changed)}")
    for path, small, big in changed:
        print(f"  {path.parent.name}/{path.name}: {small} at 320, {big} at 640")
    both = [(p.parent.name, (a[1], b[1])) for p, a, b in rows if a[1] and b[1]]
    print(f"\n{'model':<16}{'max |dP|':>10}{'median':>10}{'AUC 320':>10}{'AUC 640':>10}")
    for model in both[0][1][0]:
        moved = [abs(s[0][model] - s[1][model]) for _, s in both]
        aucs = []
        for side in (0, 1):
            live = np.array([s[side][model] for label, s in both if label == "live"])
            spoof = np.array([s[side][model] for label, s in both if label == "spoof"])
            aucs.append(pad_metrics.auc(live, spoof))
        print(
            f"{model:<16}{max(moved):>10.4f}{float(np.median(moved)):>10.4f}"
            f"{aucs[0]:>10.4f}{aucs[1]:>10.4f}"
        )


if __name__ == "__main__":
    main()
