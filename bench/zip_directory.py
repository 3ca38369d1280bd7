"""Cost of refusing a zip of many empty entries: zipfile's parse of the central directory (what
the admin request did before reading any member) against calibration.calibrate.zip_members.

    python -m bench.zip_directory [--entries 650000]
"""

from __future__ import annotations

import argparse
import io
import os
import time
import tracemalloc
import zipfile
from collections.abc import Callable

import django


def empty_entries(count: int) -> bytes:
    """A zip of ``count`` empty members (x/live/N.jpg): its central directory is all there is."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            archive.writestr(f"x/live/{i}.jpg", b"")
    return buffer.getvalue()


def measure(name: str, work: Callable[[], object]) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        work()
        outcome = "accepted"
    except Exception as exc:  # the refusal is the point
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    print(f"{name}: {seconds:.3f} s, peak +{peak:.0f} MB, {outcome[:60]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=650_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    django.setup()
    from calibration.calibrate import zip_members

    data = empty_entries(args.entries)
    print(f"{args.entries} empty entries: {len(data) / 1e6:.0f} MB zipped")
    measure("zipfile.ZipFile (before)", lambda: zipfile.ZipFile(io.BytesIO(data)).infolist())
    measure("zip_members (now)", lambda: zip_members(data))


if __name__ == "__main__":
    main()
