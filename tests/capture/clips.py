"""The head-turn clips of ../shared/data/video (read in place), as the component sends them:
frames 480 px wide as JPEG, each with its own timestamp in the clip."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import REPO

VIDEO = Path(os.environ.get("FACIA_VIDEO_DATA", REPO.parent / "shared" / "data" / "video"))
QUALITY_WIDTH = 480  # capture.js's qualityWidth


@dataclass(frozen=True)
class Clip:
    name: str
    steps: tuple[str, ...]  # the turns it shows, in order, the person's own left and right


# The clips of real people turning their heads, with the order they turn in (as bench.headturn's
# CLIP_STEPS: a face turning toward image right is the person's own left).
HEAD_TURNS = (
    Clip("tvl_real.mp4", ("turn_left", "turn_right", "look_down", "look_up")),
    Clip("pyis_real_zubair.mov", ("turn_right", "turn_left")),
)


@dataclass(frozen=True)
class Frame:
    t: float  # seconds from the clip's start (its own timestamps)
    image: np.ndarray  # BGR, full size


def frames(name: str, per_second: float | None = None) -> Iterator[Frame]:
    """The clip's frames in order (to its real end: some headers miscount), or about
    ``per_second`` of them: a component polls a few times a second, not at the camera's rate."""
    capture = cv2.VideoCapture(str(VIDEO / name))
    assert capture.isOpened(), name
    last = -1.0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            if per_second is None or t - last >= 1 / per_second - 1e-6 or last < 0:
                last = t
                yield Frame(t, image)
    finally:
        capture.release()


def jpeg(image: np.ndarray, width: int | None = QUALITY_WIDTH, quality: int = 80) -> bytes:
    """``image`` scaled to ``width`` (None: as it is) as a baseline JPEG, as a browser sends."""
    if width is not None and image.shape[1] != width:
        scale = width / image.shape[1]
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()
