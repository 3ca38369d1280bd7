"""Micro-benchmark of the bare pipeline, per stage: decode, detect, classify (and each model
of the profile, the default unless ``--profile``), on one core; then the rate of one engine per
core on every core.

python -m bench.pipeline [--profile P] [--size 640x480] [--repeat 300] [--parallel-seconds 5]

The multi-core rate is what HTTP throughput is compared with (`make bench`): one process per
core, each with its own single-threaded engine, as gunicorn runs them, all started together.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from multiprocessing.queues import Queue
from typing import Any

from bench.images import parse_size, selfie_jpeg
from ml.engine import LivenessEngine
from ml.install import default_model_dir
from ml.profiles import DEFAULT_PROFILE, PROFILES

STAGES = ("decode", "detect", "classify")


def load_engine() -> LivenessEngine:
    engine = LivenessEngine.load(
        default_model_dir(),
        precision=os.environ.get("ENGINE_PRECISION", "f32"),
    )
    engine.warm_up()
    return engine


def measure(
    engine: LivenessEngine, jpeg: bytes, repeat: int, profile: str = DEFAULT_PROFILE
) -> dict[str, list[float]]:
    names = PROFILES[profile].models
    samples: dict[str, list[float]] = {s: [] for s in (*STAGES, *names, "total", "cpu")}
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        verdict = engine.check(jpeg, profile)
        samples["total"].append((time.perf_counter() - start) * 1000)
        # CPU time of every thread of the process (OpenVINO's too): what an image costs the
        # machine, less moved by other processes than the wall time on a busy one
        samples["cpu"].append((time.process_time() - cpu) * 1000)
        for stage in STAGES:
            samples[stage].append(verdict.timings_ms[stage])
    image = engine.decode(jpeg)
    box = verdict.box
    for name in names:  # each model alone: crop, preprocess, inference, postprocess
        model = engine.models[name]
        for _ in range(repeat):
            start = time.perf_counter()
            model.p_live(image, box)
            samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def report(
    samples: dict[str, list[float]], size: str, nbytes: int, profile: str = DEFAULT_PROFILE
) -> float:
    print(
        f"bare pipeline, profile {profile} ({os.environ.get('ENGINE_PRECISION', 'f32')}), "
        "one core, "
        f"{size} JPEG ({nbytes / 1000:.0f} kB), "
        f"{len(samples['total'])} runs"
    )
    print(f"{'stage':<18}{'mean ms':>10}{'median':>10}{'p95':>10}")
    for stage, values in samples.items():
        ordered = sorted(values)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        label = stage if stage in (*STAGES, "total", "cpu") else f"  {stage}"
        print(
            f"{label:<18}{statistics.fmean(values):>10.2f}"
            f"{statistics.median(values):>10.2f}{p95:>10.2f}"
        )
    per_image = statistics.median(samples["total"])
    print(f"bare pipeline rate: {1000 / per_image:.1f} images/s on one core")
    return per_image


def _worker(jpeg: bytes, ready: Any, seconds: float, counts: Any, profile: str) -> None:
    engine = load_engine()
    engine.check(jpeg, profile)
    ready.wait()
    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        engine.check(jpeg, profile)
        done += 1
    counts.put(done)


def parallel_rate(
    jpeg: bytes, processes: int, seconds: float, profile: str = DEFAULT_PROFILE
) -> float:
    """Images per second of ``processes`` single-threaded engines running at once."""
    context = mp.get_context("spawn")  # OpenVINO is not fork-safe
    ready = context.Barrier(processes)
    counts: Queue[int] = context.Queue()  # each worker's checks
    workers = [
        context.Process(target=_worker, args=(jpeg, ready, seconds, counts, profile))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    total = sum(counts.get(timeout=seconds + 120) for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


def main(argv: list[str] | None = None) -> tuple[float, float]:
    """Median ms per image on one core, and images/s of one engine per core on all cores."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    parser.add_argument("--size", default="640x480", help="JPEG size WxH (default 640x480)")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument(
        "--parallel-seconds", type=float, default=5, help="0: skip the all-cores rate"
    )
    args = parser.parse_args(argv)
    engine = load_engine()
    jpeg = selfie_jpeg(*parse_size(args.size))
    measure(engine, jpeg, 10, args.profile)  # warm caches
    samples = measure(engine, jpeg, args.repeat, args.profile)
    per_image = report(samples, args.size, len(jpeg), args.profile)
    rate = 0.0
    if args.parallel_seconds > 0:
        cores = os.cpu_count() or 1
        rate = parallel_rate(jpeg, cores, args.parallel_seconds, args.profile)
        print(
            f"bare pipeline on {cores} cores (one single-threaded engine per core, "
            f"{args.parallel_seconds:g} s): {rate:.1f} images/s "
            f"(one core x {cores}: {cores * 1000 / per_image:.1f})"
        )
    return per_image, rate


if __name__ == "__main__":
    main()
