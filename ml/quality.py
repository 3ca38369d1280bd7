"""Quality gates: refuse a capture the classifiers cannot judge, and say what to fix.

Every gate reads YuNet's faces (box, landmarks, score) and the decoded image. ``measure``
computes the numbers once; ``failures`` lists every gate they fail, in the order the service
reports them (the first one answers the request). Defaults were chosen from the dev set
(``manage.py evaluate``, which reports every gate's refusals; figures in the docs, Accuracy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np

from ml.errors import FaceRefused
from ml.yunet import Face

SHARPNESS_SIDE = 112  # the face is resized to this before the Laplacian: size-independent
# The face is averaged down to this many cells a side before its colour is read: a cell's
# colour is the face's, not its pixels' noise (a grey face with sigma-5 noise in each channel
# reads 5.2 pixel by pixel, at most 0.98 in cells; the least coloured dev face 8.5 and 8.0).
COLOUR_SIDE = 16


@dataclass(frozen=True)
class QualityThresholds:
    """Where each gate refuses. Override any of them with ``LIVENESS_QUALITY`` in settings."""

    # Dev-set figures behind each default are in the docs (Accuracy, "Quality gates").
    # another face whose size (sqrt of its box's area) is at least this share of the main
    # face's -> multiple_faces, here and in the head-turn challenge (other_face_ratios)
    max_other_face_ratio: float = 0.6
    # shorter side of the face box, in decoded pixels (large JPEGs are decoded with at least
    # 480 px on the longer side, and again finer when the face is under this only there:
    # ml.engine.finer_scale); below it DTN upsamples the face more than 4x. Dev: >= 73 px
    min_face_px: float = 64.0
    # largest crop scale the frame allows about the face, min((W-1)/w, (H-1)/h), where
    # MiniFASNetV1SE asks for 4.0. Dev face crops: <= 1.12; dev full frames (live): >= 1.68
    min_context: float = 1.5
    # distance from the face box to the nearest image edge, in face sides (negative when the
    # box leaves the image, -1 when a landmark does). Dev full frames: >= 0.17; a face cut
    # by the edge: about -0.005 (YuNet's box stops at the edge)
    min_border_gap: float = 0.01
    # |nose offset| from the eyes' midpoint along the eye axis, in half inter-ocular
    # distances (0 = frontal, 1 = nose in line with an eye). Dev live: <= 0.66; the
    # reference print spoof/minivision_2.jpg (head turned, must pass): 0.79
    max_yaw: float = 0.9
    # mean luma (0..255) of the face box. Dev faces: 55..192
    min_luma: float = 40.0
    max_luma: float = 215.0
    # 100 * var(Laplacian) / var(intensity) of the face box, grey, resized to 112x112: high
    # frequencies' share, independent of face size and contrast. Dev live: >= 4.2 (full
    # frames >= 12); a 350 px face blurred with sigma 3 px: 3.9, with 5 px: 1.5
    min_sharpness: float = 2.5
    # mean |Cr| + |Cb| (BT.601 chroma, 8-bit scale; 0 = grey) of the face box averaged down to
    # 16x16 cells. The models were trained on colour: the grey dev jomariya live faces scored
    # 0.01-0.33, all spoof. Grey (dev faces and clip frames as L or 16-bit PNG, L JPEG, or
    # 3-channel JPEG q 70-95): 0.00; with sigma-5 noise in each channel <= 0.98. Colour: dev
    # and clip faces >= 7.9 (JPEG q 70 too), darkened to luma 40 >= 3.2, half saturated
    # >= 4.0 (python -m bench.colour_gate; docs, Accuracy, "Quality gates")
    min_colour: float = 1.5

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, float | str] | None) -> QualityThresholds:
        """The defaults with ``overrides``; ValueError for a name that is no threshold, or a
        value out of its range (``RANGES``, ``PAIRS``)."""
        known = {f.name for f in fields(cls)}
        unknown = set(overrides or {}) - known
        if unknown:
            raise ValueError(f"unknown quality thresholds: {', '.join(sorted(unknown))}")
        thresholds = cls(**{k: float(v) for k, v in (overrides or {}).items()})
        if problems := thresholds.out_of_range():
            raise ValueError("; ".join(problems))
        return thresholds

    def out_of_range(self) -> list[str]:
        """What is wrong with these thresholds: one sentence per value outside its range, or
        pair whose low end is not below its high end."""
        problems = [
            f"{name}={getattr(self, name):g}: expected {bounds.text()}"
            for name, bounds in RANGES.items()
            if not bounds.holds(getattr(self, name))
        ]
        problems += [
            f"{low}={getattr(self, low):g} must be below {high}={getattr(self, high):g}"
            for low, high in PAIRS
            if not getattr(self, low) < getattr(self, high)
        ]
        return problems


@dataclass(frozen=True)
class Range:
    """Where a threshold may lie (``above``: the lowest value excluded)."""

    lowest: float = -math.inf
    highest: float = math.inf
    above: bool = False

    def holds(self, value: float) -> bool:
        low_ok = value > self.lowest if self.above else value >= self.lowest
        return low_ok and value <= self.highest

    def text(self) -> str:
        if self.above:
            return f"above {self.lowest:g}"
        if math.isinf(self.highest):
            return f"at least {self.lowest:g}"
        return f"{self.lowest:g} to {self.highest:g}"


# Past these, a gate refuses every face (LIVENESS_QUALITY='{"min_luma": 300}' answered every
# live selfie 422 too_dark) or reads a measure that cannot go there. At their ends a gate
# refuses nothing (min_luma 0, max_luma 255, min_face_px 0, min_sharpness 0), which an operator
# may want; min_border_gap and min_context refuse no face at -1 and 0 and have no such end.
RANGES: dict[str, Range] = {
    # a lone face's ratio is 0, and 0 >= 0: at 0 every image would be multiple_faces
    "max_other_face_ratio": Range(0.0, above=True),
    # no decoded image's shorter side is longer: a PNG has at most 4096 x 4096 pixels
    # (ml.decode), a JPEG is decoded reduced (a 40 MP square one to 790 px), or again finer
    # to at most as many pixels as a PNG (MAX_FINER_PIXELS)
    "min_face_px": Range(0.0, 4096.0),
    "min_context": Range(0.0),
    # -1 is the measure's own floor (a landmark outside the image)
    "min_border_gap": Range(-1.0),
    # the yaw is an absolute value: at 0 only an exactly frontal face would pass
    "max_yaw": Range(0.0, above=True),
    "min_luma": Range(0.0, 255.0),  # mean luma of 8-bit pixels
    "max_luma": Range(0.0, 255.0),
    "min_sharpness": Range(0.0),
    # no face measures more: a face of pure green or magenta, the most coloured pixels, 191.1
    "min_colour": Range(0.0, 191.0),
}
# Thresholds that bound one measure from both sides: with low >= high no face passes both.
PAIRS = (("min_luma", "max_luma"),)


@dataclass(frozen=True)
class QualityMeasures:
    other_face_ratio: float
    face_px: float
    context: float
    border_gap: float
    yaw: float
    luma: float
    sharpness: float
    colour: float


# The stable codes and their sentences, in the order the gates are checked.
REFUSALS: dict[str, str] = {
    "no_face": "No face was found in the selfie image.",
    "multiple_faces": "More than one face is in the image; only the person being checked "
    "should be in the frame.",
    "face_too_small": "The face is too small to judge; move closer to the camera.",
    "face_too_close": "The face fills the image; send the full camera frame showing the head "
    "and shoulders, not a face crop.",
    "face_cut_off": "The face is cut off by the edge of the image; centre the face in the frame.",
    "head_turned": "The head is turned away from the camera; look straight at the camera.",
    "too_dark": "The face is too dark; add light in front of the face.",
    "overexposed": "The face is overexposed; avoid direct light or glare on the face.",
    "no_colour": "The image has no colour (greyscale or infrared); send a colour image from a "
    "colour camera.",
    "too_blurry": "The face is blurred; hold the camera still and keep the face in focus.",
}


def refusal(code: str) -> FaceRefused:
    return FaceRefused(code, REFUSALS[code])


def other_face_ratios(main: Face, faces: Sequence[Face]) -> list[float]:
    """Each face beside ``main``, its size over the main face's (a size: the square root of
    the box's area). One at ``max_other_face_ratio`` or over is a second person: the
    multiple_faces gate refuses the image and the head-turn judge fails the challenge, by
    this one measure."""
    side = math.sqrt(main.box[2] * main.box[3])
    return [math.sqrt(f.box[2] * f.box[3]) / side for f in faces if f is not main]


def _border_gap(face: Face, width: int, height: int) -> float:
    if any(not (0 <= px < width and 0 <= py < height) for px, py in face.landmarks):
        return -1.0
    x, y, w, h = face.box
    return min(x, y, width - (x + w), height - (y + h)) / min(w, h)


def yaw_of(landmarks: tuple[tuple[float, float], ...]) -> float:
    """Signed nose offset along the eye axis from the eyes' midpoint, in half inter-ocular
    distances: 0 for a frontal face, about +-1 when the nose is in line with an eye. Measured
    along the eye axis, so a tilted (rolled) head reads the same as an upright one."""
    right_eye, left_eye, nose = (np.asarray(p, np.float64) for p in landmarks[:3])
    axis = left_eye - right_eye
    half = float(np.linalg.norm(axis)) / 2
    if half < 1e-6:
        return math.inf
    along = float(np.dot(nose - (right_eye + left_eye) / 2, axis / (2 * half)))
    return along / half


def _face_region(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    height, width = image.shape[:2]
    x, y, w, h = box
    x1, y1 = max(int(x), 0), max(int(y), 0)
    x2, y2 = min(int(x + w), width), min(int(y + h), height)
    return image[y1:y2, x1:x2]


def _grey(region: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region


def sharpness_of(region: np.ndarray) -> float:
    size = (SHARPNESS_SIDE, SHARPNESS_SIDE)
    face = cv2.resize(_grey(region), size, interpolation=cv2.INTER_AREA).astype(np.float64)
    spread = face.var()
    if spread < 1e-6:
        return 0.0  # a flat patch has no detail at all
    return float(100 * cv2.Laplacian(face, cv2.CV_64F).var() / spread)


def colour_of(region: np.ndarray) -> float:
    """Mean |Cr| + |Cb| (BT.601 chroma, 8-bit scale) of ``region`` averaged down to
    ``COLOUR_SIDE`` cells a side: 0 for a grey face however it was coded (PNG, JPEG); noise
    alone (sigma 5 in each channel) read at most 0.98 on the dev faces."""
    if region.ndim == 2:
        return 0.0
    cells = cv2.resize(region, (COLOUR_SIDE, COLOUR_SIDE), interpolation=cv2.INTER_AREA)
    blue, green, red = cv2.split(cells.astype(np.float32))
    # Cr = 0.713 (R - Y), Cb = 0.564 (B - Y), Y = 0.299 R + 0.587 G + 0.114 B, written with
    # R - G and B - G: exactly 0 when the channels are equal (Y's float sum is not exact).
    red_green, blue_green = red - green, blue - green
    cr = 0.713 * (0.701 * red_green - 0.114 * blue_green)
    cb = 0.564 * (0.886 * blue_green - 0.299 * red_green)
    return float(np.mean(np.abs(cr) + np.abs(cb)))


def measure(image: np.ndarray, face: Face, faces: list[Face]) -> QualityMeasures:
    height, width = image.shape[:2]
    _, _, w, h = face.box
    region = _face_region(image, face.box)
    empty = region.size == 0
    return QualityMeasures(
        other_face_ratio=max(other_face_ratios(face, faces), default=0.0),
        face_px=min(w, h),
        context=min((width - 1) / w, (height - 1) / h),
        border_gap=_border_gap(face, width, height),
        yaw=abs(yaw_of(face.landmarks)),
        luma=0.0 if empty else float(_grey(region).mean()),
        sharpness=0.0 if empty else sharpness_of(region),
        colour=0.0 if empty else colour_of(region),
    )


CROP_POLICIES = ("judge", "refuse")
# Gates a face crop is never refused by under the "judge" policy: a tight crop always leaves
# too little context and always touches (or crosses) the image edges.
CROP_EXEMPT = frozenset({"face_too_close", "face_cut_off"})


def capture_of(m: QualityMeasures, t: QualityThresholds) -> str:
    """ "crop" when the face fills the image (context below ``min_context``), else "frame"."""
    return "crop" if m.context < t.min_context else "frame"


def failures(m: QualityMeasures, t: QualityThresholds, crop_policy: str = "refuse") -> list[str]:
    """Codes of every gate ``m`` fails, in reporting order. With ``crop_policy="judge"`` a
    face crop is judged: neither face_too_close nor face_cut_off refuses it."""
    if crop_policy not in CROP_POLICIES:
        raise ValueError(f"unknown crop policy: {crop_policy!r}")
    exempt = CROP_EXEMPT if crop_policy == "judge" and capture_of(m, t) == "crop" else set()
    checks = (
        ("multiple_faces", m.other_face_ratio >= t.max_other_face_ratio),
        ("face_too_small", m.face_px < t.min_face_px),
        ("face_too_close", m.context < t.min_context),
        ("face_cut_off", m.border_gap < t.min_border_gap),
        ("head_turned", m.yaw > t.max_yaw),
        ("too_dark", m.luma < t.min_luma),
        ("overexposed", m.luma > t.max_luma),
        # after the light gates: a dark or washed-out colour face loses its chroma too, and
        # light is what to fix there; before blur: no steadier hand makes a grey image judgeable
        ("no_colour", m.colour < t.min_colour),
        ("too_blurry", m.sharpness < t.min_sharpness),
    )
    return [code for code, failed in checks if failed and code not in exempt]
