"""What verifying the installed models' digests adds to a worker's start: hashing every file
against the install manifest (ml.install.installed_faults) beside the engine's load and warm-up
from a warm compile cache, median of ``--repeat`` rounds, interleaved.

    python -m bench.model_digests [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from ml.engine import LivenessEngine
from ml.install import default_model_dir, installed_faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    model_dir = default_model_dir()
    size = sum(p.stat().st_size for p in model_dir.glob("*.*") if p.is_file())
    LivenessEngine.load(model_dir).warm_up()  # fills the compile cache
    hashing, start = [], []
    for _ in range(args.repeat):
        began = time.perf_counter()
        assert installed_faults(model_dir) == []
        hashing.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        LivenessEngine.load(model_dir).warm_up()  # its own hashing included
        start.append((time.perf_counter() - began) * 1000)
    hash_ms, start_ms = statistics.median(hashing), statistics.median(start)
    print(f"digests of {size / 1e6:.1f} MB: {hash_ms:.1f} ms (median of {args.repeat})")
    print(f"engine load + warm-up, warm cache: {start_ms:.0f} ms (median)")
    print(f"share of a worker's start spent hashing: {100 * hash_ms / start_ms:.1f} %")


if __name__ == "__main__":
    main()
