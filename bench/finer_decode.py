"""What a JPEG's second, finer decode costs (ml.engine ``LivenessEngine._gated``), and which
dev images take it.

    python -m bench.finer_decode [--rounds 7]

A dev selfie placed in wide frames as JPEG and PNG (the 1920x540 frame is decoded at 1/4, its
face then 39 px: too small, so it is decoded again at 1/2; a 1920x1080 frame of the same face
passes at 1/4 in one pass). Prints, per frame, the scale judged, the gates, P(live) and the
per-image milliseconds of ``engine.check`` (decode, detect and gates, classifiers: medians of
interleaved rounds), then how many of the dev images take the second pass (those refused
face_too_small only: none on dev). Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from ml.decode import decode_frame
from ml.engine import LivenessEngine
from ml.errors import FaceRefused
from ml.install import default_model_dir

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = REPO.parent / "shared" / "data" / "dev"
SELFIE = DEV_DATA / "live" / "minivision_1.jpg"


def wide_frame(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """``photo`` scaled to fit ``height``, at the top centre of a grey ``width`` x ``height``
    frame (as tests/capture/test_session_quality.py builds its frames)."""
    side = min(width / photo.shape[1], height / photo.shape[0])
    face = cv2.resize(photo, (round(photo.shape[1] * side), round(photo.shape[0] * side)))
    frame = np.full((height, width, 3), 128, np.uint8)
    left = (width - face.shape[1]) // 2
    frame[: face.shape[0], left : left + face.shape[1]] = face
    return frame


def encoded(image: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def judged(engine: LivenessEngine, data: bytes) -> str:
    first = decode_frame(data)
    frame, _, gates = engine.gated(first, "judge")
    try:
        p_live = f"{engine.check(data).p_live:.4f}"
    except FaceRefused as exc:
        p_live = exc.code
    passes = "two passes" if frame.scale != first.scale else "one pass"
    return f"1/{first.scale} -> 1/{frame.scale} ({passes}), gates {gates.failures}, {p_live}"


def second_passes(engine: LivenessEngine) -> tuple[int, list[str]]:
    """How many dev images there are, and those whose gates decode them again finer."""
    paths = sorted(p for p in DEV_DATA.rglob("*") if p.suffix in (".jpg", ".png"))
    taken = []
    for path in paths:
        first = decode_frame(path.read_bytes())
        if any(engine.gated(first, policy)[0] is not first for policy in ("judge", "refuse")):
            taken.append(str(path.relative_to(DEV_DATA)))
    return len(paths), taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    engine = LivenessEngine.load(default_model_dir())
    engine.warm_up()
    photo = cv2.imread(str(SELFIE))
    assert photo is not None, SELFIE
    cases = {
        f"{w}x{h} {ext[1:]}": encoded(wide_frame(photo, w, h), ext)
        for w, h in ((1920, 1080), (1920, 540), (3840, 1080))
        for ext in (".jpg", ".png")
    }
    times: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, data in cases.items():
            start = time.perf_counter()
            stages = engine.check(data).timings_ms
            times[name].append({**stages, "total": (time.perf_counter() - start) * 1000})
    print(
        f"engine.check per image, ms (medians of {args.rounds} interleaved rounds): total ="
        " first decode + detect and gates (a finer decode and its detection included) + classify"
    )
    for name, data in cases.items():
        ms = {k: statistics.median(t[k] for t in times[name]) for k in times[name][0]}
        figures = " ".join(f"{k} {ms[k]:6.1f}" for k in ("total", "decode", "detect", "classify"))
        print(f"  {name:15} {figures}  {judged(engine, data)}")
    count, taken = second_passes(engine)
    print(f"dev images decoded again finer: {len(taken)} of {count} {taken}")


if __name__ == "__main__":
    main()
