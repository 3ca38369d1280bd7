"""JPEG decoders for a phone photo, back to back (interleaved rounds, medians): what the
detector's reduced decode costs with each libjpeg-turbo binding and option.

    python -m bench.decode [--size 4000x3000] [--rounds 7]

cv2 (OpenCV's bundled libjpeg-turbo, what ml.decode uses) against simplejpeg (its own bundled
libjpeg-turbo) and PyTurboJPEG (Debian's libturbojpeg), with and without the fast DCT and
upsampling, and each of ml.decode's own steps (the structural probe, the whole decode_image).
simplejpeg and PyTurboJPEG come from requirements-bench.txt; a missing one is skipped.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from bench.images import parse_size, selfie_jpeg
from ml.decode import decode_image, probe


def candidates(jpeg: bytes) -> dict[str, Callable[[], object]]:
    buffer = np.frombuffer(jpeg, np.uint8)
    width, height = parse_size("x".join(map(str, probe(jpeg)[1:])))
    found: dict[str, Callable[[], object]] = {
        "ml.decode.probe (structure only)": lambda: probe(jpeg),
        "ml.decode.decode_image (probe + cv2)": lambda: decode_image(jpeg),
        "cv2 IMREAD_REDUCED_COLOR_8": lambda: cv2.imdecode(buffer, cv2.IMREAD_REDUCED_COLOR_8),
        "cv2 IMREAD_REDUCED_COLOR_4": lambda: cv2.imdecode(buffer, cv2.IMREAD_REDUCED_COLOR_4),
        "cv2 full (IMREAD_COLOR)": lambda: cv2.imdecode(buffer, cv2.IMREAD_COLOR),
    }
    try:
        import simplejpeg

        def simple(fast: bool) -> object:
            return simplejpeg.decode_jpeg(
                jpeg, "BGR", fastdct=fast, fastupsample=fast,
                min_height=height // 8, min_width=width // 8,
            )  # fmt: skip

        found["simplejpeg 1/8"] = lambda: simple(False)
        found["simplejpeg 1/8, fast DCT + upsampling"] = lambda: simple(True)
    except ImportError:
        print("simplejpeg not installed: skipped (requirements-bench.txt)")
    try:
        from turbojpeg import (
            TJFLAG_FASTDCT,
            TJFLAG_FASTUPSAMPLE,
            TurboJPEG,
        )

        turbo = TurboJPEG()
        fast = TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE
        found["PyTurboJPEG 1/8"] = lambda: turbo.decode(jpeg, scaling_factor=(1, 8))
        found["PyTurboJPEG 1/8, fast DCT + upsampling"] = lambda: turbo.decode(
            jpeg, scaling_factor=(1, 8), flags=fast
        )
        found["PyTurboJPEG header only"] = lambda: turbo.decode_header(jpeg)
    except (ImportError, OSError, RuntimeError) as exc:
        print(f"PyTurboJPEG unusable here: skipped ({exc})")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    jpeg = selfie_jpeg(*parse_size(args.size))
    found = candidates(jpeg)
    spent: dict[str, list[float]] = {name: [] for name in found}
    for _ in range(args.rounds):
        for name, call in found.items():
            start = time.perf_counter()
            for _ in range(3):
                call()
            spent[name].append((time.perf_counter() - start) * 1000 / 3)
    base = statistics.median(spent["cv2 IMREAD_REDUCED_COLOR_8"])
    print(f"{args.size} JPEG ({len(jpeg) / 1e6:.1f} MB), {args.rounds} interleaved rounds")
    print(f"{'decoder':<42}{'ms':>8}{'/ cv2 1/8':>11}")
    for name, values in spent.items():
        median = statistics.median(values)
        print(f"{name:<42}{median:>8.2f}{median / base:>11.2f}")


if __name__ == "__main__":
    main()
