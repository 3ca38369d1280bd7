"""Cost and accuracy of DTN variants in the thorough profile, on one core.

python -m bench.dtn [--rounds 7] [--int8]

For each variant: DTN milliseconds per image (crop, inference, postprocess; median of the
per-round means, variants interleaved round by round so a busy machine slows them alike), dev
AUC of the thorough profile, on every dev image with a face and on those passing the gates.
``--int8`` adds NNCF post-training quantisation variants (needs ``nncf``; calibrated on the
dev face crops, so their AUC on dev is optimistic).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from bench.images import DEV_DATA, REPO
from ml import pad_metrics
from ml.compilation import compile_model
from ml.dtn import DTN
from ml.engine import LivenessEngine
from ml.install import default_model_dir
from ml.profiles import PROFILES, fuse
from ml.registry import u8_input
from ml.yunet import int_box

SOURCE = Path(os.environ.get("MODEL_SOURCE", REPO.parent / "shared" / "models"))
TFLITE = SOURCE / "dtn" / "FaceAntiSpoofing.tflite"


@dataclass
class Face:
    label: str
    image: np.ndarray
    box: tuple[int, int, int, int]
    passed: bool
    pair: dict[str, float]


def dev_faces(engine: LivenessEngine) -> list[Face]:
    faces = []
    for label in ("live", "spoof"):
        for path in sorted((DEV_DATA / label).iterdir()):
            if path.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
                continue
            image = engine.decode(path.read_bytes())
            found = engine.inspect(image)
            if found.face is None:
                continue
            pair = {k: v for k, v in found.scores.items() if k != "dtn"}  # + HyperFAS
            faces.append(Face(label, image, int_box(found.face), not found.failures, pair))
    return faces


def _auc(faces: list[Face], scores: list[float], gated: bool) -> float:
    kept: dict[str, list[float]] = {"live": [], "spoof": []}
    for face, score in zip(faces, scores, strict=True):
        if face.passed or not gated:
            kept[face.label].append(score)
    return pad_metrics.auc(np.asarray(kept["live"]), np.asarray(kept["spoof"]))


def thorough_auc(faces: list[Face], dtn_scores: list[float], gated: bool) -> float:
    fused = [
        fuse({**face.pair, "dtn": dtn}, PROFILES["thorough"])
        for face, dtn in zip(faces, dtn_scores, strict=True)
    ]
    return _auc(faces, fused, gated)


def variants(int8: bool, faces: list[Face]) -> dict[str, Callable[[], tuple[ov.Model, str]]]:
    core = ov.Core()

    def read() -> ov.Model:
        return core.read_model(str(TFLITE))

    found = {
        "f32 (tflite as is)": lambda: (read(), "f32"),
        "f32 + uint8 input": lambda: (u8_input(read()), "f32"),
        "bf16 hint": lambda: (read(), "bf16"),
        "bf16 + uint8 input": lambda: (u8_input(read()), "bf16"),
    }
    if int8:
        import nncf

        def quantized(**options: object) -> ov.Model:
            feed = DTN(core.compile_model(read(), "CPU"))
            calibration = [feed.preprocess(f.image, f.box) for f in faces]
            model = nncf.quantize(
                read(), nncf.Dataset(calibration), subset_size=len(calibration), **options
            )
            return u8_input(model)

        found["int8 (NNCF) + uint8 input"] = lambda: (quantized(), "f32")
        found["int8 (NNCF, MatMul in f32) + uint8"] = lambda: (
            quantized(ignored_scope=nncf.IgnoredScope(types=["MatMul"])),
            "f32",
        )
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args(argv)
    engine = LivenessEngine.load(default_model_dir())
    faces = dev_faces(engine)
    core = ov.Core()
    models: dict[str, Any] = {}
    for name, build in variants(args.int8, faces).items():
        model, precision = build()
        path = Path(f"/tmp/bench-dtn-{os.getpid()}-{len(models)}.xml")
        ov.save_model(model, str(path), compress_to_fp16=False)
        models[name] = DTN(compile_model(core, path, 1, precision=precision))
        path.unlink()
        path.with_suffix(".bin").unlink()
    scores = {n: [m.p_live(f.image, f.box) for f in faces] for n, m in models.items()}
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for face in faces[:20]:
                model.p_live(face.image, face.box)
            timings[name].append((time.perf_counter() - start) * 1000 / 20)
    pair = [engine.models[n] for n in PROFILES["fast"].models]
    pair_ms = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for face in faces[:20]:
            for model in pair:
                model.p_live(face.image, face.box)
        pair_ms.append((time.perf_counter() - start) * 1000 / 20)
    passed = sum(f.passed for f in faces)
    print(
        f"DTN on one core, {len(faces)} dev faces ({passed} pass the gates), {args.rounds} rounds"
    )
    print(f"{'variant':<38}{'ms/image':>9}{'AUC all':>9}{'AUC gated':>10}")
    fast = [fuse(f.pair, PROFILES["fast"]) for f in faces]
    print(
        f"{'fast profile (pair + HyperFAS, no DTN)':<38}{statistics.median(pair_ms):>9.1f}"
        f"{_auc(faces, fast, False):>9.4f}{_auc(faces, fast, True):>10.4f}"
    )
    for name in models:
        print(
            f"{name:<38}{statistics.median(timings[name]):>9.1f}"
            f"{thorough_auc(faces, scores[name], False):>9.4f}"
            f"{thorough_auc(faces, scores[name], True):>10.4f}"
        )


if __name__ == "__main__":
    main()
