"""`make bench`: the bare pipeline per stage (one core, then one engine per core on every
core), then HTTP load against a local server with wrk, then the ratio of the two.

    python -m bench [--size 640x480] [--large 4000x3000] [--concurrency 8] [--duration 10]
"""

from __future__ import annotations

import argparse
import os

from bench import load, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    load.add_arguments(parser)
    parser.add_argument("--repeat", type=int, default=300, help="pipeline runs per size")
    args = parser.parse_args()
    load1, load5, _ = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load1:.2f} (1 min) {load5:.2f} (5 min)\n"
    )
    seconds = str(args.duration / 2)
    _, bare_rps = pipeline.main(
        ["--size", args.size, "--repeat", str(args.repeat), "--parallel-seconds", seconds]
    )
    print()
    pipeline.main(
        [
            "--size",
            args.large,
            "--repeat",
            str(max(20, args.repeat // 10)),
            "--parallel-seconds",
            "0",
        ]
    )
    http_rps = load.run(args)
    cores = os.cpu_count() or 1
    print(
        f"\nHTTP throughput / bare pipeline ({cores} engines on {cores} cores, same run): "
        f"{http_rps:.1f} / {bare_rps:.1f} req/s = {http_rps / bare_rps:.2f}"
    )


if __name__ == "__main__":
    main()
