"""The no_colour gate's measure (``ml.quality.colour_of``) on every dev face and every 10th
frame of the clips, in colour and changed: JPEG re-encoded, darkened or brightened to the
light gates' edges, desaturated, made grey (as 3 equal channels or 1-channel files), grey with
noise or a cast. Prints the smallest, median and largest of each, and how many the default
``min_colour`` refuses; and, for the clip frames, their most neutral square (what a grey print
in front of that camera could measure): the figures in the docs (Accuracy, "Quality gates").

    python -m bench.colour_gate [--video DIR]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from bench.images import DEV_DATA
from ml.engine import LivenessEngine
from ml.install import default_model_dir
from ml.quality import QualityThresholds, colour_of

VIDEO = DEV_DATA.parent / "video"
FRAME_STEP = 10
Change = Callable[[np.ndarray], np.ndarray]


def decoded(ext: str, image: np.ndarray, params: tuple[int, ...] = ()) -> np.ndarray:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    back = cv2.imdecode(data, cv2.IMREAD_COLOR)  # full size: the face box stays where it was
    assert back is not None
    return back


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def mono(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def scaled(image: np.ndarray, factor: float) -> np.ndarray:
    changed: np.ndarray = np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8)
    return changed


def saturated(image: np.ndarray, share: float) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hsv[..., 1] = (hsv[..., 1].astype(np.float32) * share).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def noisy(image: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, 5, image.shape)
    return np.clip(grey(image) + noise, 0, 255).astype(np.uint8)


def blue_cast(image: np.ndarray) -> np.ndarray:
    """Grey with 2 levels more blue: a monochrome camera's white balance a little off."""
    cast: np.ndarray = np.clip(grey(image).astype(np.int16) + (2, 0, 0), 0, 255).astype(np.uint8)
    return cast


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return decoded(".jpg", image, (cv2.IMWRITE_JPEG_QUALITY, quality))


def grey_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return jpeg(grey(image), quality)


CHANGES: dict[str, Change] = {
    "colour": lambda im: im,
    **{f"colour, JPEG q {q}": partial(jpeg, quality=q) for q in (70, 80, 90, 95)},
    "colour, half saturated": partial(saturated, share=0.5),
    "colour, a quarter saturated": partial(saturated, share=0.25),
    "colour, half blended with its grey": lambda im: cv2.addWeighted(im, 0.5, grey(im), 0.5, 0),
    "grey, 3 channels": grey,
    **{f"grey, 3 channels, JPEG q {q}": partial(grey_jpeg, quality=q) for q in (70, 95)},
    "grey, 1-channel PNG": lambda im: decoded(".png", mono(im)),
    "grey, 1-channel JPEG": lambda im: decoded(".jpg", mono(im)),
    "grey, 16-bit PNG": lambda im: decoded(".png", mono(im).astype(np.uint16) * 257),
    "grey, noise sigma 5 a channel": noisy,
    "grey, noise sigma 5, JPEG q 95": lambda im: jpeg(noisy(im), 95),
    "grey, blue cast of 2 levels": blue_cast,
}


def images(engine: LivenessEngine, video: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Each dev image (label/name), decoded as the service decodes it, and every FRAME_STEP-th
    frame of each clip (clip/name#frame)."""
    for path in sorted(DEV_DATA.glob("*/*")):
        if path.parent.name in ("live", "spoof"):
            yield f"{path.parent.name}/{path.name}", engine.decode(path.read_bytes())
    for clip in sorted(p for p in video.iterdir() if p.suffix in (".mp4", ".mov")):
        capture = cv2.VideoCapture(str(clip))
        index = 0
        while (frame := capture.read())[0]:
            if index % FRAME_STEP == 0:
                yield f"clip/{clip.name}#{index}", frame[1]
            index += 1


def neutral_square(image: np.ndarray) -> float:
    """The least colour of the squares (an eighth of the shorter side) tiling ``image``."""
    height, width = image.shape[:2]
    side = min(height, width) // 8
    squares = [
        image[y : y + side, x : x + side]
        for y in range(0, height - side + 1, side)
        for x in range(0, width - side + 1, side)
    ]
    return min(colour_of(square) for square in squares)


def measured(engine: LivenessEngine, video: Path) -> dict[str, list[tuple[float, str]]]:
    """Each change's colour measure (the gates' own) of each face YuNet finds in the untouched
    image, measured where it was found; and the face taken to a luma of 40 and of 215."""
    found: dict[str, list[tuple[float, str]]] = {}
    for name, image in images(engine, video):
        faces = engine.faces(image)
        untouched = engine.gates(image, faces).measures
        if untouched is None:
            continue
        changes: dict[str, Change] = {
            **CHANGES,
            "colour, face luma 40": partial(scaled, factor=40 / untouched.luma),
            "colour, face luma 215": partial(scaled, factor=215 / untouched.luma),
        }
        kind = name.split("/")[0]
        if kind == "clip":
            found.setdefault("clip frame, its most neutral square", []).append(
                (neutral_square(image), name)
            )
        for label, change in changes.items():
            measures = engine.gates(change(image), faces).measures
            assert measures is not None  # the same faces: measured again
            key = f"{label} ({kind})" if label == "colour" else label
            found.setdefault(key, []).append((measures.colour, name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    args = parser.parse_args()
    threshold = QualityThresholds().min_colour
    found = measured(LivenessEngine.load(default_model_dir()), args.video)
    print(f"colour measure of the face box; min_colour {threshold:g}")
    print(f"{'images':40} {'n':>4} {'smallest':>22} {'median':>7} {'largest':>7} refused")
    for label, rows in found.items():
        values = np.array([value for value, _ in rows])
        low = min(rows)
        refused = int((values < threshold).sum())
        print(
            f"{label:40} {len(rows):4} {low[0]:7.2f} {low[1].split('/')[-1][:14]:>14}"
            f" {np.median(values):7.2f} {values.max():7.2f} {refused:7}"
        )


if __name__ == "__main__":
    main()
