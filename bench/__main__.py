"""`make bench`: the bare pipeline per stage, then HTTP load against a local server, then the
ratio of the two.

    python -m bench [--size 640x480] [--large 4000x3000] [--concurrency 8] [--requests 501]
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
    per_image_ms = pipeline.main(["--size", args.size, "--repeat", str(args.repeat)])
    print()
    pipeline.main(["--size", args.large, "--repeat", str(max(20, args.repeat // 10))])
    http_rps = load.run(args)
    cores = os.cpu_count() or 1
    bare_rps = cores * 1000 / per_image_ms
    print(
        f"\nHTTP throughput / bare pipeline ({cores} cores x one image per "
        f"{per_image_ms:.2f} ms): {http_rps:.1f} / {bare_rps:.1f} req/s = "
        f"{http_rps / bare_rps:.2f}"
    )


if __name__ == "__main__":
    main()
