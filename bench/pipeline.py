"""Micro-benchmark of the bare pipeline, per stage, on one core: decode, detect, classify.

python -m bench.pipeline [--size 640x480] [--repeat 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench.images import REPO, parse_size, selfie_jpeg
from ml.engine import LivenessEngine

STAGES = ("decode", "detect", "classify")


def measure(engine: LivenessEngine, jpeg: bytes, repeat: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    for _ in range(repeat):
        start = time.perf_counter()
        verdict = engine.check(jpeg)
        samples["total"].append((time.perf_counter() - start) * 1000)
        for stage in STAGES:
            samples[stage].append(verdict.timings_ms[stage])
    return samples


def report(samples: dict[str, list[float]], size: str, nbytes: int) -> float:
    print(
        f"bare pipeline ({os.environ.get('ENGINE_PRECISION', 'f32')}), one core, "
        f"{size} JPEG ({nbytes / 1000:.0f} kB), "
        f"{len(samples['total'])} runs"
    )
    print(f"{'stage':<10}{'mean ms':>10}{'median':>10}{'p95':>10}")
    for stage, values in samples.items():
        ordered = sorted(values)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        print(
            f"{stage:<10}{statistics.fmean(values):>10.2f}"
            f"{statistics.median(values):>10.2f}{p95:>10.2f}"
        )
    per_image = statistics.median(samples["total"])
    print(
        f"bare pipeline rate: {1000 / per_image:.1f} images/s per core, "
        f"{(os.cpu_count() or 1) * 1000 / per_image:.1f} images/s on {os.cpu_count()} cores"
    )
    return per_image


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="640x480", help="JPEG size WxH (default 640x480)")
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args(argv)
    engine = LivenessEngine.load(
        Path(os.environ.get("MODEL_DIR", REPO / "var" / "models")),
        precision=os.environ.get("ENGINE_PRECISION", "f32"),
    )
    engine.warm_up()
    jpeg = selfie_jpeg(*parse_size(args.size))
    measure(engine, jpeg, 10)  # warm caches
    return report(measure(engine, jpeg, args.repeat), args.size, len(jpeg))


if __name__ == "__main__":
    main()
