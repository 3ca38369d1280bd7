"""INT8 (NNCF post-training quantisation) of YuNet, the MiniFASNets and HyperFAS: accuracy
against f32 on the dev set, the reference verdicts of shared/models/NOTICE.md, and the cost
of each model in f32, bf16 and int8 on one core (interleaved rounds, so a busy machine slows
every variant alike: read the ratios).

    python -m bench.quantize [--build] [--rounds 7]

``--build`` (re)quantises into ``MODEL_DIR/int8`` first (needs requirements-quantize.txt).
Calibration: the even-numbered dev images of each label and three variants generated from
each (mirrored, darker, brighter); figures are given on all dev images and on the odd-numbered
half the calibration never saw. The bars for shipping int8 as the default (issue): reference
verdicts unchanged, each model's dev AUC within 0.01 of f32, every score within 0.05 of f32.
"""

from __future__ import annotations

import argparse
import functools
import operator
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import openvino as ov

from bench.images import DEV_DATA
from ml import pad_metrics as metrics
from ml.classifier import Box
from ml.compilation import describe_cpu
from ml.engine import LivenessEngine
from ml.install import default_model_dir
from ml.profiles import DEFAULT_PROFILE, PROFILES, fuse
from ml.quantize import QUANTIZED, build_int8, calibration_inputs, int8_ready, variants
from ml.yunet import int_box, largest

MODEL_DIR = default_model_dir()
REFERENCES = ("live/minivision_1.jpg", "spoof/minivision_2.jpg", "spoof/minivision_3.jpg")
CLASSIFIERS = QUANTIZED[1:]
CAPS = "OPTIMIZATION_CAPABILITIES"
BARS = {"auc": 0.01, "score": 0.05}


@dataclass
class Image:
    path: str
    label: str
    held_out: bool
    pixels: np.ndarray


class Found(TypedDict):
    """A face's box and each classifier's P(live) on it."""

    box: Box
    scores: dict[str, float]


def dev_images(engine: LivenessEngine) -> list[Image]:
    found = []
    for label in ("live", "spoof"):
        paths = sorted(
            p for p in (DEV_DATA / label).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
        )
        for i, path in enumerate(paths):
            found.append(
                Image(f"{label}/{path.name}", label, i % 2 == 1, engine.decode(path.read_bytes()))
            )
    return found


def scores_on(
    engine: LivenessEngine, images: list[Image], boxes: dict[str, Box] | None
) -> dict[str, Found | None]:
    """Per image: each classifier's P(live) and the box; on ``boxes`` when given (the f32
    detector's), else on this engine's own detection. None where no face is found."""
    out: dict[str, Found | None] = {}
    for image in images:
        box = boxes.get(image.path) if boxes is not None else None
        if boxes is None:
            face = largest(engine.detector.detect(image.pixels))
            if face is not None:
                box = int_box(face)
        if box is None:
            out[image.path] = None
            continue
        scores = {n: engine.models[n].p_live(image.pixels, box) for n in CLASSIFIERS}
        out[image.path] = {"box": box, "scores": scores}
    return out


def pair(scores: dict[str, float]) -> float:
    """The MiniFASNet pair's mean P(live), as NOTICE.md's reference verdicts give it."""
    return (scores["minifasnet_v2"] + scores["minifasnet_v1se"]) / 2


def auc_of(
    images: list[Image],
    found: dict[str, Found | None],
    key: Callable[[dict[str, float]], float],
    held_out_only: bool = False,
) -> float:
    kept: dict[str, list[float]] = {"live": [], "spoof": []}
    for image in images:
        entry = found[image.path]
        if entry is None or (held_out_only and not image.held_out):
            continue
        kept[image.label].append(key(entry["scores"]))
    return metrics.auc(np.asarray(kept["live"]), np.asarray(kept["spoof"]))


def iou(a: Box, b: Box) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1)


def accuracy(
    f32: LivenessEngine, int8: LivenessEngine, images: list[Image], label: str = "int8"
) -> bool:
    base = scores_on(f32, images, None)
    faces = {p: v for p, v in base.items() if v is not None}
    boxes = {p: v["box"] for p, v in faces.items()}
    same_boxes = scores_on(int8, images, boxes)  # int8 classifiers on the f32 boxes
    on_boxes = {p: v for p, v in same_boxes.items() if v is not None}  # every one of boxes
    own = scores_on(int8, images, None)  # the whole int8 pipeline (its own detector)
    own_faces = {p: v for p, v in own.items() if v is not None}
    fused = PROFILES[DEFAULT_PROFILE]
    keys: dict[str, Callable[[dict[str, float]], float]] = {
        name: operator.itemgetter(name) for name in CLASSIFIERS
    }
    keys[f"{DEFAULT_PROFILE} profile (fused)"] = lambda s: fuse(s, fused)
    ok = True
    print(
        f"\n{label} against f32 on {len(boxes)} dev faces "
        f"({sum(i.held_out for i in images)} images held out of calibration)"
    )
    print(
        f"{'model':<24}{'AUC f32':>9}{'AUC ' + label:>9}{'dAUC':>8}{'held-out dAUC':>14}"
        f"{'max |dscore|':>13}{'pass':>6}"
    )
    for name, key in keys.items():
        a32, a8 = auc_of(images, base, key), auc_of(images, same_boxes, key)
        h32, h8 = auc_of(images, base, key, True), auc_of(images, same_boxes, key, True)
        delta = max(abs(key(on_boxes[p]["scores"]) - key(faces[p]["scores"])) for p in boxes)
        passed = abs(a8 - a32) <= BARS["auc"] and delta <= BARS["score"]
        ok &= passed
        print(
            f"{name:<24}{a32:>9.4f}{a8:>9.4f}{a8 - a32:>+8.4f}{h8 - h32:>+14.4f}"
            f"{delta:>13.4f}{'yes' if passed else 'NO':>6}"
        )
    # the detector: faces found, box agreement, and the fused score through the int8 boxes
    both = [p for p in boxes if p in own_faces]
    ious = [iou(boxes[p], own_faces[p]["box"]) for p in both]
    fused_delta = max(
        abs(fuse(own_faces[p]["scores"], fused) - fuse(faces[p]["scores"], fused)) for p in both
    )
    a_own = auc_of(images, own, keys[f"{DEFAULT_PROFILE} profile (fused)"])
    missing = len(boxes) - len(both)
    extra = sum(1 for p, v in own.items() if v is not None and p not in boxes)
    flips = sum(
        (fuse(own_faces[p]["scores"], fused) >= 0.5) != (fuse(faces[p]["scores"], fused) >= 0.5)
        for p in both
    )
    print(
        f"whole {label} pipeline: fused verdicts at 0.5 that differ from f32's: {flips} of "
        f"{len(both)}"
    )
    print(
        f"yunet {label}: faces {len(both)} of {len(boxes)} found again "
        f"({missing} lost, {extra} new); "
        f"box IoU with f32 min {min(ious):.3f} median {statistics.median(ious):.3f}; whole "
        f"pipeline: fused AUC {a_own:.4f}, max |dP(live)| {fused_delta:.4f}"
    )
    ok &= missing == 0 and extra == 0 and fused_delta <= BARS["score"]
    print(f"\nreference verdicts (NOTICE.md; threshold 0.5), f32 -> {label} (whole pipeline):")
    ref_images = [i for i in images if i.path in REFERENCES]
    for image in ref_images:
        a, b = base[image.path], own[image.path]
        if a is None or b is None:
            print(f"  {image.path}: face {'lost' if b is None else 'missing in f32'}")
            ok = False
            continue
        cells = []
        for part, key in (
            ("pair", pair),
            ("hyperfas", keys["hyperfas"]),
            ("fused", keys[f"{DEFAULT_PROFILE} profile (fused)"]),
        ):
            x, y = key(a["scores"]), key(b["scores"])
            same = (x >= 0.5) == (y >= 0.5)
            ok &= same
            cells.append(f"{part} {x:.4f} -> {y:.4f}{'' if same else ' VERDICT CHANGED'}")
        print(f"  {image.path}: " + "; ".join(cells))
    print(f"\nall bars met ({label} may be the default): {'yes' if ok else 'NO'}")
    return ok


def costs(engines: dict[str, LivenessEngine], image: np.ndarray, box: Box, rounds: int) -> None:
    """ms per call of each model (crop + inference) and of YuNet (letterbox + inference +
    decode) for each precision, rounds interleaved."""
    names = ["yunet", *CLASSIFIERS]
    timing: dict[tuple[str, str], list[float]] = {(p, n): [] for p in engines for n in names}
    for _ in range(rounds):
        for precision, engine in engines.items():
            for name in names:
                call: Callable[[], object] = (
                    functools.partial(engine.detector.detect, image)
                    if name == "yunet"
                    else functools.partial(engine.models[name].p_live, image, box)
                )
                start = time.perf_counter()
                for _ in range(20):
                    call()
                timing[precision, name].append((time.perf_counter() - start) * 50)
    print(
        f"\nms per call on one core ({image.shape[1]}x{image.shape[0]} image, "
        f"{rounds} interleaved rounds of 20, median)"
    )
    print(
        f"{'model':<18}"
        + "".join(f"{p:>9}" for p in engines)
        + "".join(f"{p + '/f32':>11}" for p in engines if p != "f32")
    )
    totals = dict.fromkeys(engines, 0.0)
    for name in names:
        med = {p: statistics.median(timing[p, name]) for p in engines}
        for p in engines:
            totals[p] += med[p]
        print(
            f"{name:<18}"
            + "".join(f"{med[p]:>9.2f}" for p in engines)
            + "".join(f"{med[p] / med['f32']:>11.2f}" for p in engines if p != "f32")
        )
    print(
        f"{'sum':<18}"
        + "".join(f"{totals[p]:>9.2f}" for p in engines)
        + "".join(f"{totals[p] / totals['f32']:>11.2f}" for p in engines if p != "f32")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", action="store_true", help="(re)build MODEL_DIR/int8 first")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    core = ov.Core()
    name, capabilities = (core.get_property("CPU", k) for k in ("FULL_DEVICE_NAME", CAPS))
    print(f"CPU: {name}; OpenVINO capabilities {capabilities}; {describe_cpu()}")
    f32 = LivenessEngine.load(MODEL_DIR)
    images = dev_images(f32)
    if args.build or not int8_ready(MODEL_DIR):
        calibration = [v for i in images if not i.held_out for v in variants(i.pixels)]
        start = time.perf_counter()
        inputs = calibration_inputs(f32, calibration)
        build_int8(MODEL_DIR, inputs)
        counts = {k: len(v) for k, v in inputs.items()}
        print(
            f"built {MODEL_DIR / 'int8'} in {time.perf_counter() - start:.0f} s from "
            f"{len(calibration)} calibration images (inputs per model: {counts})"
        )
    int8 = LivenessEngine.load(MODEL_DIR, precision="int8")
    bf16 = LivenessEngine.load(MODEL_DIR, precision="bf16")
    accuracy(f32, int8, images, "int8")
    accuracy(f32, bf16, images, "bf16")
    engines = {"f32": f32, "bf16": bf16, "int8": int8}
    sample = next(i for i in images if i.path == REFERENCES[0])
    box = int_box(f32.detect(sample.pixels))
    costs(engines, sample.pixels, box, args.rounds)


if __name__ == "__main__":
    main()
