"""Whether a large JPEG refused ``no_face`` at its reduced decode would have a face decoded
whole, and what decoding it again would cost (ml.engine ``LivenessEngine._gated`` decodes
again finer only for ``face_too_small``).

    python -m bench.no_face_decode [--rounds 7]

Every dev image, scaled so that its face (as YuNet finds it in the image) has a given side,
is placed at the centre of a grey frame and encoded as JPEG (quality 95). Each JPEG is gated
as /liveness gates it (decoded reduced, ``gated``) and gated again from the same file decoded
whole (cv2.imdecode at full size, as its PNG would be). Prints, per frame and face side, how
many images each way says ``no_face`` and how many the whole decode judges, then every image
on which the two disagree about ``no_face`` with YuNet's best face score at every reduction
the file can be decoded at. Then the milliseconds of decode + detection of a face-free JPEG
at its first reduction and at each finer one (medians of interleaved rounds). Figures only;
nothing is asserted. About 8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ml.decode import Frame, decode_frame
from ml.engine import LivenessEngine
from ml.install import default_model_dir
from ml.yunet import Face, largest

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = REPO.parent / "shared" / "data" / "dev"
# Frame (width, height) -> face sides in the frame's pixels: from where YuNet finds almost no
# face to where it finds most of them.
SWEEP = {
    (4000, 3000): (80, 110, 120, 130, 150, 160, 170, 190, 200, 210, 230, 240, 250, 270, 300),
    (6000, 4000): (250, 300, 350, 400),
    (2000, 1500): (70, 90, 110, 130),
    (3840, 1080): (140, 180, 220),
}


def placed(photo: np.ndarray, scale: float, width: int, height: int) -> np.ndarray | None:
    """``photo`` scaled by ``scale`` at the centre of a grey frame; None when it does not fit."""
    size = (max(1, round(photo.shape[1] * scale)), max(1, round(photo.shape[0] * scale)))
    if size[0] > width or size[1] > height:
        return None
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(photo, size, interpolation=shrink)
    frame = np.full((height, width, 3), 128, np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    frame[top : top + size[1], left : left + size[0]] = resized
    return frame


def jpeg(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buffer.tobytes()


def whole(data: bytes) -> Frame:
    """``data`` decoded at full size (as its PNG would be), as a frame with no finer decode."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return Frame.whole(image)


def best_scores(engine: LivenessEngine, data: bytes) -> str:
    """YuNet's best face score at the file's first reduction and at each finer one."""
    first = decode_frame(data)
    frames = [first, *(first.finer(scale) for scale in first.finer_scales())]
    if first.scale > 1 and 1 not in first.finer_scales():
        frames.append(whole(data))
    scores = [max((f.score for f in engine.faces(f.image)), default=None) for f in frames]
    return " ".join(
        f"1/{f.scale}: {'none' if s is None else f'{s:.3f}'}"
        for f, s in zip(frames, scores, strict=True)
    )


def sweep(engine: LivenessEngine) -> None:
    rows = list(csv.DictReader((DEV_DATA / "manifest.csv").open(newline="")))
    disagreements = []
    print("frame, face side: JPEGs, no_face reduced, no_face whole, judged whole")
    for (width, height), sides in SWEEP.items():
        for side in sides:
            counts: Counter[str] = Counter()
            for row in rows:
                photo = cv2.imread(str(DEV_DATA / row["file"]))
                assert photo is not None, row["file"]
                face = largest(engine.faces(photo))
                scale = 0.0 if face is None else side / min(face.box[2:])
                frame = placed(photo, scale, width, height) if scale else None
                if frame is None:  # no face to place, or the image does not fit the frame
                    continue
                data = jpeg(frame)
                reduced = engine.gated(decode_frame(data))[2].failures
                full = engine.gated(whole(data))[2].failures
                counts.update(
                    jpegs=1,
                    reduced="no_face" in reduced,
                    whole="no_face" in full,
                    judged=not full,
                )
                if ("no_face" in reduced) != ("no_face" in full):
                    disagreements.append(
                        f"  {width}x{height} face {side}: {row['file']} reduced {reduced}, "
                        f"whole {full}; best face score {best_scores(engine, data)}"
                    )
            print(
                f"  {width}x{height} {side:4}: {counts['jpegs']:3} {counts['reduced']:3} "
                f"{counts['whole']:3} {counts['judged']:3}"
            )
    print(f"no_face at one decode and not the other: {len(disagreements)}")
    print("\n".join(disagreements))


def detected(engine: LivenessEngine, data: bytes, scale: int | None) -> list[Face]:
    """The faces in ``data`` decoded at ``scale`` (None: its first reduction)."""
    return engine.faces(decode_frame(data, scale=scale).image)


def timings(engine: LivenessEngine, rounds: int) -> None:
    """Decode + detection of a face-free JPEG (blurred noise) at each reduction it allows."""
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), np.uint8)
    scene = cv2.GaussianBlur(noise, (0, 0), 3)
    print(f"face-free JPEG, decode + detection, ms (medians of {rounds} interleaved rounds)")
    for width, height in ((4000, 3000), (6000, 4000)):
        data = jpeg(cv2.resize(scene, (width, height)))
        first = decode_frame(data)
        runs: dict[str, Callable[[], object]] = {
            f"1/{first.scale} (first)": partial(detected, engine, data, None)
        }
        for scale in first.finer_scales():
            runs[f"1/{scale}"] = partial(detected, engine, data, scale)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                assert not run()
                times[name].append((time.perf_counter() - start) * 1000)
        figures = ", ".join(f"{name} {statistics.median(t):.1f}" for name, t in times.items())
        print(f"  {width}x{height}: {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    engine = LivenessEngine.load(default_model_dir())
    engine.warm_up()
    timings(engine, args.rounds)
    sweep(engine)


if __name__ == "__main__":
    main()
