"""The head-turn judge (ml.headturn) on real clips and on photos moved as a flat print.

Clips are read in place from ../shared/data/video (never copied): each is sampled at the
component's poll rate, YuNet (the service's own wrapper and model) finds the faces, and the
judge is fed the clip's own step order and every other order. Print attacks are made from
the still dev photos (../shared/data/dev/live): the photo is a plane in front of a pinhole
camera at selfie distance, rotated about a vertical or horizontal axis through the face,
with hand jitter, rendered with cv2.warpPerspective and detected like a camera frame.

    python -m bench.headturn              # every clip and warp family, per split
    python -m bench.headturn --clips      # clips only
    python -m bench.headturn --phases     # clips at 3-6 polls a second, 8 phases each
    python -m bench.headturn --steered    # a recording steered to each drawn order
    python -m bench.headturn --slow       # clips at 0.5-1.5 s between polls, per continuity rule
    python -m bench.headturn --continuity # frame pairs 0.25-1.5 s apart, and two people spliced

Each frame is judged with the quality gates it fails (the service's defaults), as the service
feeds its judge; --phases and --steered also judge without them (what the service did before
the gates reached the judge) and send frames as the component does (480 px JPEG).

Thresholds were chosen on the TUNING split only; HELD_OUT is reported apart.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ml import quality
from ml.compilation import compile_model, make_core
from ml.engine import gates_of
from ml.headturn import (
    BOTH_TURNS,
    STEPS,
    HeadTurnJudge,
    Limits,
    Observation,
    Progress,
    changes,
    face_size,
    observation,
    tolerances,
)
from ml.install import default_model_dir, install_models
from ml.yunet import INPUT_SHAPES, Face, YuNet

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
VIDEO = Path(os.environ.get("FACIA_VIDEO_DATA", SHARED / "data" / "video"))
DEV_LIVE = Path(os.environ.get("FACIA_DEV_DATA", SHARED / "data" / "dev")) / "live"
MODEL_SOURCE = Path(os.environ.get("MODEL_SOURCE", SHARED / "models"))
POLL_HZ = 4.0  # the capture component's quality polls
THRESHOLDS = quality.QualityThresholds()  # the service's default gates
QUALITY_WIDTH, QUALITY_JPEG = 480, 80  # capture.js: qualityWidth, toDataURL's quality 0.8

# Each turning clip's steps in the person's own directions. The manifest names directions as
# seen in the image ("turns right then left"): a face turning toward image right is the
# person's own left in a camera image that is not mirrored (what getUserMedia gives).
CLIP_STEPS: dict[str, tuple[str, ...]] = {
    "tvl_real.mp4": ("turn_left", "turn_right", "look_down", "look_up"),
    "pyis_real_zubair.mov": ("turn_right", "turn_left"),
    "tvl_fake.mp4": ("turn_left", "turn_right", "look_down", "look_up"),  # replays tvl_real
}
# Clips and photo sources the thresholds were chosen on; the rest is held out.
TUNING_CLIPS = ("tvl_real.mp4", "fellway_me.mp4", "mounish_face.mp4", "faceswap_Data3.mp4")
HELD_OUT_CLIPS = (
    "pyis_real_zubair.mov",
    "lestari_real.mp4",
    "tvl_fake.mp4",
    "lestari_fake.mp4",
    "pyis_fake_zubair.mp4",
)
TUNING_SOURCES = ("apfol", "jomariya", "siwmv2", "tricky")
HELD_OUT_SOURCES = ("minivision", "pyis", "vigu", "wolf")


def detector(model_dir: Path | None = None) -> YuNet:
    """The service's YuNet (one thread, f32) from ``model_dir`` (installed there if needed)."""
    target = model_dir or default_model_dir()
    install_models(MODEL_SOURCE, target)
    core = make_core(None)
    compiled = {s: compile_model(core, target / "yunet.xml", 1, s) for s in INPUT_SHAPES}
    return YuNet(compiled, score_threshold=0.6)


# ---- clips ---------------------------------------------------------------------------------
def clip_frames(path: Path, hz: float = POLL_HZ) -> Iterator[tuple[float, np.ndarray]]:
    """(time, frame) of the frames a poller at ``hz`` would send, read to the end (some
    headers give a wrong frame count)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    index, due = 0, 0.0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            t = index / fps
            if t + 1e-6 >= due:
                due += 1 / hz
                yield t, frame
            index += 1
    finally:
        capture.release()


def refused(image: np.ndarray, faces: list[Face]) -> tuple[str, ...]:
    """The quality gates ``image`` fails, as a quality call reports them (crop policy
    ``refuse``, the default thresholds)."""
    return tuple(gates_of(image, faces, THRESHOLDS, "refuse").failures)


def seen(yunet: YuNet, t: float, image: np.ndarray, gated: bool = True) -> Observation:
    """The observation the service makes of one quality frame: its faces and, ``gated``, the
    gates it fails (without: what the service fed its judge before)."""
    faces = yunet.detect(image)
    return observation(t, faces, refused=refused(image, faces) if gated else ())


def clip_observations(
    yunet: YuNet, name: str, hz: float = POLL_HZ, gated: bool = True
) -> list[Observation]:
    return [seen(yunet, t, frame, gated) for t, frame in clip_frames(VIDEO / name, hz)]


def as_sent(frame: np.ndarray) -> np.ndarray:
    """``frame`` as the component sends it: at most 480 px wide, a JPEG of quality 0.8."""
    scale = min(1.0, QUALITY_WIDTH / frame.shape[1])
    if scale < 1.0:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, QUALITY_JPEG])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert ok and decoded is not None
    return np.asarray(decoded)


@dataclass(frozen=True)
class Polled:
    """One frame of a clip as a quality call would see it: faces and gates failed."""

    t: float
    faces: list[Face]
    refused: tuple[str, ...]

    def observed(self, t: float, gated: bool) -> Observation:
        return observation(t, self.faces, refused=self.refused if gated else ())


def polled_clip(yunet: YuNet, name: str) -> list[Polled]:
    """Every frame of the clip as the component sends it, detected and gated once."""
    polled = []
    for t, frame in clip_frames(VIDEO / name, hz=1000.0):
        image = as_sent(frame)
        faces = yunet.detect(image)
        polled.append(Polled(t, faces, refused(image, faces)))
    return polled


def judge(
    steps: Sequence[str], observations: Sequence[Observation], limits: Limits | None = None
) -> tuple[Progress, HeadTurnJudge]:
    """Feed ``observations``; a challenge still running when they end is closed by a poll
    after every time limit (the server's clock runs on without frames)."""
    limits = limits or Limits()
    judged = HeadTurnJudge(steps, limits)
    progress = judged.progress()
    for obs in observations:
        progress = judged.observe(obs)
        if progress.state != "running":
            return progress, judged
    last = observations[-1].t if observations else 0.0
    late = last + max(limits.step_s, limits.straight_s, limits.reference_s) + 1.0
    return judged.observe(Observation(late, (0.0, 0.0, 0.0, 0.0), [[0.0, 0.0]] * 5, 0)), judged


def orders(length: int) -> list[tuple[str, ...]]:
    """Every step order of ``length`` with no step twice in a row."""
    return [
        o
        for o in itertools.product(STEPS, repeat=length)
        if all(a != b for a, b in itertools.pairwise(o))
    ]


# ---- prints --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Camera:
    width: int = 640
    height: int = 480
    focal_px: float = 520.0  # 63 degrees across: a laptop webcam or a phone's front camera


@dataclass(frozen=True)
class Warp:
    """A flat print of a photo, rotated by ``angle`` degrees about the axis through its face."""

    axis: str  # "yaw" (vertical axis) or "pitch" (horizontal axis)
    angle: float  # signed degrees at the end of the motion
    distance_cm: float  # print to camera
    face_cm: float = 15.0  # face width on the print (life size)
    start: float = 0.0  # signed degrees held first (while the reference is taken) and last

    @property
    def family(self) -> str:
        sign = "+" if self.angle >= 0 else "-"
        return f"{self.axis}{sign}{abs(self.angle):.0f}@{self.distance_cm:.0f}cm"


def _rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    f64 = np.float64  # what numpy makes of these rows anyway; named, so mypy knows the product
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]], f64)
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]], f64)
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]], f64)
    return rz @ rx @ ry


def print_homography(
    face_box: Sequence[float],
    cm_per_px: float,
    rotation: np.ndarray,
    offset_cm: Sequence[float],
    camera: Camera,
) -> np.ndarray:
    """Photo pixels -> camera pixels for the photo as a plane, its face centre at
    ``offset_cm`` (x, y, distance) from the camera, turned by ``rotation``."""
    x, y, w, h = face_box
    centre = np.array([x + w / 2, y + h / 2])
    k = np.array(
        [
            [camera.focal_px, 0, camera.width / 2],
            [0, camera.focal_px, camera.height / 2],
            [0, 0, 1],
        ]
    )
    # plane point (u, v) -> 3D: rotation @ ((u, v) - centre) * scale + offset
    plane = np.column_stack(
        [
            rotation[:, 0] * cm_per_px,
            rotation[:, 1] * cm_per_px,
            np.asarray(offset_cm, float) - rotation[:, :2] @ centre * cm_per_px,
        ]
    )
    projection: np.ndarray = k @ plane  # numpy types a product of untyped arrays as Any
    return projection


def warp_frames(
    photo: np.ndarray,
    face_box: Sequence[float],
    warp: Warp,
    rng: random.Random,
    hz: float = POLL_HZ,
    camera: Camera = Camera(),
) -> Iterator[tuple[float, np.ndarray]]:
    """A print held frontal (or at ``warp.start``) 1 s, turned to ``warp.angle`` (1 s), held
    (1.5 s), turned back (1 s) and held (1 s), with hand jitter on every frame: 1.5 degrees on
    each axis, 3 mm across, 1 cm in depth (a hand holding a sheet at arm's length)."""
    cm_per_px = warp.face_cm / face_box[2]
    ramp = [0.0] * 4 + [i / 4 for i in range(1, 5)] + [1.0] * 6
    ramp += [1 - i / 4 for i in range(1, 5)] + [0.0] * 4
    sway = [rng.gauss(0, 1) for _ in range(3)]
    for i, share in enumerate(ramp):
        turn = warp.start + (warp.angle - warp.start) * share
        yaw = (turn if warp.axis == "yaw" else 0.0) + rng.gauss(0, 1.5)
        pitch = (turn if warp.axis == "pitch" else 0.0) + rng.gauss(0, 1.5)
        rotation = _rotation(yaw, pitch, rng.gauss(0, 1.5))
        offset = (
            sway[0] * 0.5 + rng.gauss(0, 0.3),
            sway[1] * 0.5 + rng.gauss(0, 0.3),
            warp.distance_cm + sway[2] + rng.gauss(0, 1.0),
        )
        matrix = print_homography(face_box, cm_per_px, rotation, offset, camera)
        frame = cv2.warpPerspective(
            photo,
            matrix,
            (camera.width, camera.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(128, 128, 128),
        )
        yield i / hz, frame


WARPS = tuple(
    Warp(axis, sign * angle, distance)
    for distance in (25.0, 40.0)
    for axis, angles in (("yaw", (15, 30, 45, 60)), ("pitch", (15, 30, 45)))
    for angle in angles
    for sign in (1, -1)
)


def photos(sources: Sequence[str], per_source: int = 2) -> list[Path]:
    found = []
    for source in sources:
        found += sorted(DEV_LIVE.glob(f"{source}_*"))[:per_source]
    return found


def read_photo(path: Path) -> np.ndarray:
    photo = cv2.imread(str(path))  # applies EXIF orientation, as browsers do
    if photo is None:
        raise FileNotFoundError(path)
    return photo


def upright(yunet: YuNet, photo: np.ndarray) -> np.ndarray:
    """The photo turned by the quarter turn whose face YuNet scores best, as a print is held
    upright (the pyis dev photos are stored sideways: YuNet scores them 0.77 as they are,
    with a box over the whole photo, and 0.95 turned upright)."""
    turned = [
        photo,
        cv2.rotate(photo, cv2.ROTATE_90_CLOCKWISE),
        cv2.rotate(photo, cv2.ROTATE_180),
        cv2.rotate(photo, cv2.ROTATE_90_COUNTERCLOCKWISE),
    ]
    scores = [max((f.score for f in yunet.detect(image)), default=0.0) for image in turned]
    return turned[int(np.argmax(scores))]


def warp_observations(yunet: YuNet, path: Path, warp: Warp, seed: int = 0) -> list[Observation]:
    photo = upright(yunet, read_photo(path))
    faces = yunet.detect(photo)
    if not faces:
        return []
    rng = random.Random(f"{path.name}/{warp.family}/{seed}")
    return [
        observation(t, yunet.detect(frame))
        for t, frame in warp_frames(photo, faces[0].box, warp, rng)
    ]


def attack_observations(
    yunet: YuNet, path: Path, warps: Sequence[Warp], seed: int = 0
) -> list[Observation]:
    """A print that follows a challenge: one warp's motion per step, one after another."""
    photo = upright(yunet, read_photo(path))
    box = yunet.detect(photo)[0].box
    rng = random.Random(f"{path.name}/attack/{seed}")
    observations: list[Observation] = []
    start = 0.0
    for warp in warps:
        frames = list(warp_frames(photo, box, warp, rng))
        observations += [observation(start + t, yunet.detect(frame)) for t, frame in frames]
        start += frames[-1][0] + 1 / POLL_HZ
    return observations


def warp_steps(warp: Warp) -> tuple[tuple[str], ...]:
    """The one-step challenges a print turned about ``warp``'s axis would try to answer."""
    if warp.axis == "yaw":
        return (("turn_left",), ("turn_right",))
    return (("look_up",), ("look_down",))


# ---- report --------------------------------------------------------------------------------
def reached(observations: Sequence[Observation]) -> dict[str, float]:
    """Largest |yaw|, |pitch| (face widths, heights), nose parallax (face sizes) and smallest
    box aspect (over the reference's) against a reference taken on the first frontal frames,
    whatever was asked: what a challenge could see."""
    probe = HeadTurnJudge(("turn_left",), Limits(step_s=1e9, straight_s=1e9, max_gap_s=1e9))
    peak = {"yaw": 0.0, "pitch": 0.0, "parallax": 0.0, "aspect": 1.0}
    for obs in observations:
        if probe.progress().instruction == "look_straight":
            probe.observe(obs)  # until the reference is taken
        elif obs.face_count == 1:
            pose = probe.pose(obs)
            peak["yaw"] = max(peak["yaw"], abs(pose.yaw))
            peak["pitch"] = max(peak["pitch"], abs(pose.pitch))
            peak["parallax"] = max(peak["parallax"], pose.parallax)
            peak["aspect"] = min(peak["aspect"], pose.aspect)
    return peak


def clip_report(yunet: YuNet, names: Sequence[str]) -> None:
    for name in names:
        observations = clip_observations(yunet, name)
        own = CLIP_STEPS.get(name)
        if own is not None:
            progress, judged = judge(own, observations)
            others = [judge(o, observations)[0] for o in orders(len(own)) if o != own]
            passed_others = sum(p.state == "passed" for p in others)
            steps = [
                f"{own[i]} yaw {y:+.3f} pitch {p:+.3f} parallax {x:.3f} aspect {a:.3f}"
                for i, (_, y, p, x, a) in enumerate(judged.reached)
            ]
            print(
                f"{name}: own order {','.join(own)} -> {progress.state} {progress.code or ''};"
                f" other orders passed: {passed_others}/{len(others)}"
            )
            for line in steps:
                print(f"    reached {line}")
        else:
            codes = {judge(o, observations)[0].code for o in orders(3)}
            print(f"{name}: every 3-step order -> failed with {sorted(c or '?' for c in codes)}")
        peak = reached(observations)
        print(
            f"    peak |yaw| {peak['yaw']:.3f} |pitch| {peak['pitch']:.3f}"
            f" parallax {peak['parallax']:.3f} min aspect {peak['aspect']:.3f}"
            f" ({len(observations)} polls)"
        )


# ---- poll phases and steering ---------------------------------------------------------------
PHASE_RATES = (3.0, 4.0, 5.0, 6.0)  # polls a second: the component's 4, and a slower or faster
PHASES = 8  # start offsets per rate, evenly over one poll interval


def drawn_orders() -> list[tuple[str, ...]]:
    """The 14 orders draw_steps can draw: 3 steps, no repeat, both turns."""
    return [o for o in orders(3) if set(o) >= BOTH_TURNS]


def sampled(polled: Sequence[Polled], hz: float, phase: float) -> list[Polled]:
    """The frames a poller at ``hz`` starting ``phase`` seconds into the clip would send."""
    chosen, due = [], phase
    for frame in polled:
        if frame.t + 1e-6 >= due:
            chosen.append(frame)
            due += 1 / hz
    return chosen


def phase_runs(
    polled: Sequence[Polled],
    steps: Sequence[str],
    gated: bool,
    rates: Sequence[float] = PHASE_RATES,
    limits: Limits | None = None,
) -> list[Progress]:
    """The clip judged against ``steps`` at every rate and phase."""
    runs = []
    for hz in rates:
        for k in range(PHASES):
            frames = sampled(polled, hz, k / PHASES / hz)
            runs.append(judge(steps, [f.observed(f.t, gated) for f in frames], limits)[0])
    return runs


def _tally(runs: Sequence[Progress]) -> str:
    codes: dict[str, int] = {}
    for run in runs:
        if run.state != "passed":
            codes[run.code or run.state] = codes.get(run.code or run.state, 0) + 1
    passed = sum(r.state == "passed" for r in runs)
    return f"{passed}/{len(runs)} " + " ".join(f"{k}:{v}" for k, v in sorted(codes.items()))


def phase_report(yunet: YuNet, names: Sequence[str]) -> None:
    """Per clip, at every rate and phase: its own order (the turning clips) and the 14
    drawable orders, judged without the gates (before) and with them."""
    for name in names:
        polled = polled_clip(yunet, name)
        for gated in (False, True):
            label = "gated  " if gated else "ungated"
            own = CLIP_STEPS.get(name)
            mine = f"own order {_tally(phase_runs(polled, own, gated))}; " if own else ""
            drawn = [r for o in drawn_orders() if o != own for r in phase_runs(polled, o, gated)]
            print(f"{name} {label}: {mine}the 14 drawable orders {_tally(drawn)}")


SLOW_RATES = (2.0, 4 / 3, 1.0, 2 / 3)  # polls 0.5, 0.75, 1 and 1.5 s apart (max_gap_s)


def slow_report(yunet: YuNet, names: Sequence[str], rules: dict[str, Limits]) -> None:
    """Per clip, gated, polls 0.5-1.5 s apart at 8 phases each: its own order and the 14
    drawable orders under each continuity rule."""
    for name in names:
        polled = polled_clip(yunet, name)
        own = CLIP_STEPS.get(name)
        for rule, limits in rules.items():
            runs = [phase_runs(polled, o, True, SLOW_RATES, limits) for o in drawn_orders()]
            mine = phase_runs(polled, own, True, SLOW_RATES, limits) if own else []
            drawn = [r for o, rs in zip(drawn_orders(), runs, strict=True) if o != own for r in rs]
            shown = f"own order {_tally(mine)}; " if own else ""
            print(f"{name} {rule}: {shown}the 14 drawable orders {_tally(drawn)}")


# Where each turning clip turns, by eye on poses at 10 polls a second (the red team's labels):
# (start, peak, end) frame indices at 10 Hz of each step's motion, frontal to frontal.
SEGMENTS: dict[str, dict[str, tuple[int, int, int]]] = {
    "tvl_fake.mp4": {
        "turn_left": (40, 56, 92),
        "turn_right": (100, 122, 138),
        "look_down": (140, 152, 170),
        "look_up": (170, 176, 188),
    },
    "tvl_real.mp4": {
        "turn_left": (14, 30, 66),
        "turn_right": (70, 100, 112),
        "look_down": (116, 134, 142),
        "look_up": (144, 154, 168),
    },
}
STEERED_HZ = 10.0  # the recording's frames to choose from
STEERED_STRIDE = 2  # frames of it per 0.25 s poll


class Puppet:
    """A recording steered by an operator watching the prompts: each poll sends the frame of
    the part of the clip that shows the step now asked (played forward, or backward when it
    comes from later in the clip), then that part back to frontal; frontal frames for the
    reference."""

    def __init__(self, segments: dict[str, tuple[int, int, int]]) -> None:
        self.segments = segments
        self.index, self.step, self.going, self.backward = 0, "", False, False

    def next(self, instruction: str) -> int:
        if instruction != "look_straight":
            start, peak, end = self.segments[instruction]
            if not (self.going and self.step == instruction):
                self.backward = self.index > peak
                self.index = end if self.backward else start
            elif self.backward:
                self.index = max(self.index - STEERED_STRIDE, peak)
            else:
                self.index = min(self.index + STEERED_STRIDE, peak)
            self.step, self.going = instruction, True
        elif not self.step:
            self.index = (self.index + 1) % self.segments["turn_left"][0]  # the frontal start
        else:
            start, peak, end = self.segments[self.step]
            if self.going:
                self.going, self.index = False, peak
            elif self.backward:
                self.index = max(self.index - STEERED_STRIDE, start)
            else:
                self.index = min(self.index + STEERED_STRIDE, end)
        return self.index


def steered(frames: Sequence[Polled], name: str, steps: Sequence[str], gated: bool) -> Progress:
    """One challenge answered by a Puppet of the clip, polled every 0.25 s."""
    judged, puppet = HeadTurnJudge(steps), Puppet(SEGMENTS[name])
    progress, t = judged.progress(), 0.0
    while progress.state == "running" and t < 60.0:
        frame = frames[puppet.next(progress.instruction)]
        progress = judged.observe(frame.observed(t, gated))
        t += 1 / POLL_HZ
    return progress


def steered_report(yunet: YuNet, names: Sequence[str] = tuple(SEGMENTS)) -> None:
    for name in names:
        frames = sampled(polled_clip(yunet, name), STEERED_HZ, 0.0)
        for gated in (False, True):
            runs = [steered(frames, name, o, gated) for o in drawn_orders()]
            print(f"{name} steered {'gated  ' if gated else 'ungated'}: {_tally(runs)}")


def warp_report(yunet: YuNet, sources: Sequence[str], per_source: int = 2) -> None:
    """Per warp family: one-step challenges on the warp's axis (both directions) per photo,
    how many passed, the fail codes, and what the print reached (max over photos; aspect:
    min) and, for runs that reached their step, the parallax and aspect there."""
    rows: dict[str, list[tuple[Progress, dict[str, float], list[float] | None]]] = {}
    for path in photos(sources, per_source):
        for warp in WARPS:
            observations = warp_observations(yunet, path, warp)
            if not observations:
                continue
            peak = reached(observations)
            for steps in warp_steps(warp):
                progress, judged = judge(steps, observations)
                first = judged.reached[0] if judged.reached else None
                rows.setdefault(warp.family, []).append((progress, peak, first))
    print(
        f"{'family':>15} {'runs':>4} {'passed':>6} {'|yaw|':>6} {'|pitch|':>7} {'plx':>6}"
        f" {'aspect':>6}  reached: plx, aspect / codes"
    )
    for family, results in rows.items():
        codes: dict[str, int] = {}
        for progress, _, _ in results:
            key = progress.code or progress.state
            codes[key] = codes.get(key, 0) + 1
        peaks = [r[1] for r in results]
        hits = [r[2] for r in results if r[2] is not None]
        at = (
            f"{min(h[3] for h in hits):.3f}-{max(h[3] for h in hits):.3f},"
            f" {min(h[4] for h in hits):.3f}-{max(h[4] for h in hits):.3f}"
            if hits
            else "-"
        )
        print(
            f"{family:>15} {len(results):>4} {sum(r[0].state == 'passed' for r in results):>6}"
            f" {max(p['yaw'] for p in peaks):6.3f} {max(p['pitch'] for p in peaks):7.3f}"
            f" {max(p['parallax'] for p in peaks):6.3f} {min(p['aspect'] for p in peaks):6.3f}"
            f"  {at} / {' '.join(f'{k}:{v}' for k, v in sorted(codes.items()))}"
        )


# ---- continuity: a head's own motion between polls, and splices of two people -------------
# The continuity rule before the caps (tolerances growing with the gap without bound), and now.
UNCAPPED = Limits(shift_cap=math.inf, scale_cap=math.inf, shape_cap=math.inf)
RULES = {"uncapped": UNCAPPED, "capped": Limits()}
GAPS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # seconds between two polls (max_gap_s: 1.5)
# Who each clip shows (a replay shows its live clip's person); dev photo sources are people
# apart from every clip but pyis, which may be the person of the pyis clips.
PERSON = {
    "tvl_real.mp4": "tvl",
    "tvl_fake.mp4": "tvl",
    "pyis_real_zubair.mov": "pyis",
    "pyis_fake_zubair.mp4": "pyis",
    "lestari_real.mp4": "lestari",
    "lestari_fake.mp4": "lestari",
    "fellway_me.mp4": "fellway",
    "mounish_face.mp4": "mounish",
    "faceswap_Data3.mp4": "faceswap",
}


@dataclass(frozen=True)
class Shot:
    """One face as the judge sees it (whose, from what clip or photo, when, its box and
    landmarks) and its appearance (:func:`looks`), which the judge does not see."""

    person: str
    source: str
    t: float
    box: tuple[float, float, float, float]
    marks: np.ndarray
    looks: tuple[np.ndarray, ...] = ()


# Where a face's five landmarks lie in a square crop of side 1 (ArcFace's 112 px template).
TEMPLATE = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]]
)


def looks(image: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, ...]:
    """The face aligned on its landmarks to 32 px grey: an 8 x 8 thumbnail and the gradient
    orientations of its quarters (8 bins each), each zero-mean (thumbnail) and unit-norm."""
    target = (TEMPLATE * 32 / 112).astype(np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(marks.astype(np.float32), target, method=cv2.LMEDS)
    aligned = cv2.warpAffine(
        image, matrix, (32, 32), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    face = grey.astype(np.float32)
    thumb = cv2.resize(face, (8, 8), interpolation=cv2.INTER_AREA).ravel()
    thumb -= thumb.mean()
    magnitude, angle = cv2.cartToPolar(
        cv2.Sobel(face, cv2.CV_32F, 1, 0), cv2.Sobel(face, cv2.CV_32F, 0, 1)
    )
    bins = (angle % np.pi / np.pi * 8).astype(int) % 8
    quarters = [(slice(r, r + 16), slice(c, c + 16)) for r in (0, 16) for c in (0, 16)]
    grads = np.concatenate(
        [np.bincount(bins[q].ravel(), magnitude[q].ravel(), 8) for q in quarters]
    )
    return tuple(v / (np.linalg.norm(v) + 1e-6) for v in (thumb, grads))


def clip_shots(yunet: YuNet, name: str) -> list[Shot]:
    """Every frame of the clip as the component sends it that shows exactly one face."""
    shots = []
    for t, frame in clip_frames(VIDEO / name, hz=1000.0):
        image = as_sent(frame)
        obs = observation(t, yunet.detect(image))
        if obs.face_count == 1:
            marks = np.asarray(obs.landmarks, float)
            shots.append(Shot(PERSON[name], name, t, obs.box, marks, looks(image, marks)))
    return shots


def photo_shots(yunet: YuNet, sources: Sequence[str]) -> list[Shot]:
    """Every dev live photo of ``sources`` upright, as a splice's other person."""
    shots = []
    for path in photos(sources, per_source=6):
        image = upright(yunet, read_photo(path))
        obs = observation(0.0, yunet.detect(image))
        if obs.face_count == 1:
            person, marks = path.name.split("_")[0], np.asarray(obs.landmarks, float)
            shots.append(Shot(person, path.name, 0.0, obs.box, marks, looks(image, marks)))
    return shots


def genuine_pairs(shots: Sequence[Shot], gap: float) -> list[tuple[Shot, Shot]]:
    """Every frame with the frame nearest ``gap`` seconds later (within half a frame)."""
    times = np.array([s.t for s in shots])
    within = 0.51 * float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    pairs = []
    for shot in shots:
        j = int(np.argmin(np.abs(times - shot.t - gap)))
        if abs(times[j] - shot.t - gap) <= within:
            pairs.append((shot, shots[j]))
    return pairs


def splice_pairs(shots: Sequence[Shot], stride: int = 7) -> list[tuple[Shot, Shot]]:
    """Frames of two different people (every ``stride``-th clip frame, every photo)."""
    sample = [s for i, s in enumerate(shots) if s.t == 0.0 or i % stride == 0]
    return [
        (a, b)
        for a, b in itertools.permutations(sample, 2)
        if a.person != b.person and {a.person, b.person} != {"pyis"}
    ]


def framed(a: Shot, b: Shot) -> Shot:
    """``b`` scaled and moved so its box centre and size are ``a``'s: an attacker framing the
    other person's face where the last one was (shift 0, size ratio 1; shape unchanged)."""
    k = face_size(a.box) / face_size(b.box)
    ca = np.array([a.box[0] + a.box[2] / 2, a.box[1] + a.box[3] / 2])
    cb = np.array([b.box[0] + b.box[2] / 2, b.box[1] + b.box[3] / 2])
    marks = (b.marks - cb) * k + ca
    w, h = b.box[2] * k, b.box[3] * k
    return Shot(b.person, b.source, b.t, (ca[0] - w / 2, ca[1] - h / 2, w, h), marks, b.looks)


def _measured(pairs: Sequence[tuple[Shot, Shot]]) -> np.ndarray:
    return np.array([changes(a.box, a.marks, b.box, b.marks) for a, b in pairs]).reshape(-1, 3)


def _unlike(pairs: Sequence[tuple[Shot, Shot]]) -> np.ndarray:
    """1 - correlation of each pair's :func:`looks` (0: alike)."""
    return np.array([[1 - a @ b for a, b in zip(p.looks, q.looks, strict=True)] for p, q in pairs])


def _flagged(measured: np.ndarray, limits: Limits, gap: float) -> np.ndarray:
    flagged: np.ndarray = np.any(measured > np.array(tolerances(limits, gap)), axis=1)
    return flagged


def continuity_report(
    yunet: YuNet,
    clips: Sequence[str],
    sources: Sequence[str],
    rules: dict[str, Limits],
    unlike: dict[float, np.ndarray] | None = None,
) -> dict[float, np.ndarray]:
    """Per gap: the genuine pairs' shift, |log size ratio| and shape (p99, max), and per rule
    the genuine pairs it flags and the splices it catches, as they are and framed; then how
    unlike their looks are, against ``unlike`` (per gap, the TUNING genuine pairs' largest;
    these are returned when not given)."""
    shots = {name: clip_shots(yunet, name) for name in clips}
    splices = splice_pairs([s for c in shots.values() for s in c] + photo_shots(yunet, sources))
    raw, spliced = _measured(splices), _unlike(splices)
    aligned = _measured([(a, framed(a, b)) for a, b in splices])
    print(
        f"splices: {len(splices)} pairs; shape p1 {np.percentile(raw[:, 2], 1):.3f}"
        f" p10 {np.percentile(raw[:, 2], 10):.3f} median {np.median(raw[:, 2]):.3f}"
    )
    largest = {}
    for gap in GAPS:
        pairs = [p for c in shots.values() for p in genuine_pairs(c, gap)]
        real = _measured(pairs)
        spread = " ".join(
            f"{label} p99 {np.percentile(real[:, k], 99):.3f} max {real[:, k].max():.3f}"
            for k, label in enumerate(("shift", "log size", "shape"))
        )
        print(f"  gap {gap:.2f} s: {len(pairs)} genuine pairs; {spread}")
        for rule, limits in rules.items():
            flagged = _flagged(real, limits, gap)
            print(
                f"    {rule}: genuine flagged {flagged.sum()}/{len(pairs)}"
                f" {_which(pairs, flagged)};"
                f" splices caught {_flagged(raw, limits, gap).mean():.1%} as they are,"
                f" {_flagged(aligned, limits, gap).mean():.1%} framed"
            )
        looked = _unlike(pairs)
        largest[gap] = looked.max(axis=0)
        limit = largest[gap] if unlike is None else unlike[gap]
        for k, label in enumerate(("thumbnail", "gradients")):
            flagged = looked[:, k] > limit[k]
            print(
                f"    looks, {label}: genuine max {largest[gap][k]:.3f}; over {limit[k]:.3f}:"
                f" genuine {flagged.sum()} {_which(pairs, flagged)},"
                f" splices {(spliced[:, k] > limit[k]).mean():.1%}"
            )
    return largest


def _which(pairs: Sequence[tuple[Shot, Shot]], flagged: np.ndarray) -> str:
    which = Counter(a.source for (a, _), f in zip(pairs, flagged, strict=True) if f)
    return " ".join(f"{k}:{v}" for k, v in sorted(which.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", action="store_true", help="clips only")
    parser.add_argument("--warps", action="store_true", help="warped photos only")
    parser.add_argument("--phases", action="store_true", help="clips at every poll phase only")
    parser.add_argument("--steered", action="store_true", help="steered recordings only")
    parser.add_argument("--continuity", action="store_true", help="genuine motion and splices")
    parser.add_argument("--slow", action="store_true", help="clips polled 0.5-1.5 s apart only")
    parser.add_argument("--per-source", type=int, default=2, help="photos per dev source")
    args = parser.parse_args(argv)
    yunet = detector()
    unlike: dict[float, np.ndarray] | None = None  # the TUNING genuine pairs' (continuity)
    if args.steered:
        return steered_report(yunet)
    for split, clips, sources in (
        ("TUNING", TUNING_CLIPS, TUNING_SOURCES),
        ("HELD OUT", HELD_OUT_CLIPS, HELD_OUT_SOURCES),
    ):
        print(f"== {split}")
        if args.phases:
            phase_report(yunet, clips)
            continue
        if args.continuity:
            unlike = continuity_report(yunet, clips, sources, RULES, unlike)
            continue
        if args.slow:
            slow_report(yunet, clips, RULES)
            continue
        if not args.warps:
            clip_report(yunet, clips)
        if not args.clips:
            warp_report(yunet, sources, args.per_source)


if __name__ == "__main__":
    main()
