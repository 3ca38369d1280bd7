"""The head-turn judge on landmark trajectories that YuNet finds, at test time, in the real
clips (../shared/data/video, read in place) and in dev photos warped as a flat print."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bench import headturn as bench
from ml import quality
from ml.headturn import (
    FACE_FIELDS,
    FAIL_CODES,
    STEPS,
    Box,
    HeadTurnJudge,
    Limits,
    Observation,
    StateError,
    draw_steps,
    observation,
    parse_steps,
)
from ml.yunet import Face, YuNet
from tests.conftest import skip_or_fail


@pytest.fixture(autouse=True, scope="module")
def _clips_present() -> None:
    if not bench.VIDEO.is_dir():
        skip_or_fail(f"no clips in {bench.VIDEO} (../shared/data/video)")


TURNING = ("tvl_real.mp4", "pyis_real_zubair.mov")
STILL = ("fellway_me.mp4", "mounish_face.mp4", "lestari_real.mp4", "lestari_fake.mp4")
Clips = Callable[[str], list[Observation]]


@pytest.fixture(scope="module")
def yunet(model_dir: Path) -> YuNet:
    return bench.detector(model_dir)


@pytest.fixture(scope="module")
def clip(yunet: YuNet) -> Clips:
    """Observations of a clip at the poll rate (each clip detected once per module)."""
    seen: dict[str, list[Observation]] = {}

    def observations(name: str) -> list[Observation]:
        if name not in seen:
            seen[name] = bench.clip_observations(yunet, name)
        return seen[name]

    return observations


def state(observations: Sequence[Observation], steps: Sequence[str], **limits: float) -> str:
    progress, _ = bench.judge(steps, observations, Limits(**limits))  # type: ignore[arg-type]  # tests name float limits only
    return progress.state if progress.state == "passed" else f"failed:{progress.code}"


def moved(obs: Observation, t: float | None = None, **changes: object) -> Observation:
    return dataclasses.replace(obs, t=obs.t if t is None else t, **changes)  # type: ignore[arg-type]  # fields as the tests name them


# ---- steps ---------------------------------------------------------------------------------
def test_drawn_steps_are_random_never_repeat_and_always_hold_both_turns() -> None:
    rng = random.Random(22)
    drawn = [draw_steps(rng) for _ in range(400)]
    assert all(len(d) == 3 and set(d) <= set(STEPS) for d in drawn)
    assert all(a != b for d in drawn for a, b in zip(d, d[1:], strict=False))
    assert all({"turn_left", "turn_right"} <= set(d) for d in drawn)
    assert {d[0] for d in drawn} == set(STEPS)  # any step may come first
    possible = [o for o in bench.orders(3) if {"turn_left", "turn_right"} <= set(o)]
    assert set(drawn) == set(possible) and len(possible) == 14
    assert len(draw_steps(n=5)) == 5  # the OS's source by default
    with pytest.raises(ValueError):
        draw_steps(rng, n=2)


def test_parse_steps_reads_the_test_setting() -> None:
    assert parse_steps("left, right,up,down") == ("turn_left", "turn_right", "look_up", "look_down")
    assert parse_steps("turn_right,look_down") == ("turn_right", "look_down")
    for bad in ("", "left,,right", "left,left", "sideways"):
        with pytest.raises(ValueError):
            parse_steps(bad)


def test_every_fail_code_has_a_sentence() -> None:
    assert set(FAIL_CODES) == {
        "step_timeout",
        "wrong_direction",
        "face_lost",
        "face_changed",
        "planar_motion",
        "too_few_frames",
        "multiple_faces",
    }
    assert all(text.endswith(".") and len(text) > 20 for text in FAIL_CODES.values())


# ---- real clips ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", TURNING)
def test_a_clip_passes_its_own_order_and_fails_every_other(clip: Clips, name: str) -> None:
    own = bench.CLIP_STEPS[name]
    assert state(clip(name), own) == "passed"
    others = {o: state(clip(name), o) for o in bench.orders(len(own)) if o != own}
    assert len(others) > 10
    assert [o for o, s in others.items() if s == "passed"] == []


@pytest.mark.slow
def test_left_is_the_persons_own_left(yunet: YuNet) -> None:
    """Mirrored, tvl_real's first turn (toward image right: the person's own left) reads as a
    turn right, so its order passes only with left and right swapped."""
    mirrored = [
        observation(t, yunet.detect(cv2.flip(frame, 1)))
        for t, frame in bench.clip_frames(bench.VIDEO / "tvl_real.mp4")
    ]
    own = bench.CLIP_STEPS["tvl_real.mp4"]
    swapped = ("turn_right", "turn_left", *own[2:])
    assert state(mirrored, swapped) == "passed"
    assert state(mirrored, own) == "failed:wrong_direction"


@pytest.mark.slow
@pytest.mark.parametrize("name", STILL)
def test_held_still_fails(clip: Clips, name: str) -> None:
    results = {state(clip(name), o) for o in bench.orders(3)}
    assert results == {"failed:step_timeout"}


@pytest.mark.slow
def test_two_faces_fail(clip: Clips) -> None:
    assert state(clip("faceswap_Data3.mp4"), ("turn_left", "turn_right", "look_up")) == (
        "failed:multiple_faces"
    )


@pytest.mark.slow
def test_a_turn_not_asked_for_fails(clip: Clips) -> None:
    # tvl_real turns to the person's left first
    assert state(clip("tvl_real.mp4"), ("turn_right", "turn_left", "look_down")) == (
        "failed:wrong_direction"
    )
    assert state(clip("tvl_real.mp4"), ("look_up", "turn_left", "turn_right")) == (
        "failed:wrong_direction"
    )


# ---- quality gates -------------------------------------------------------------------------
@pytest.mark.slow
def test_a_replay_too_blurred_for_the_selfie_gets_no_reference(clip: Clips) -> None:
    """tvl_fake (tvl_real filmed off a screen) passes its own order on landmarks alone; every
    poll of it fails too_blurry, so the judge never takes its reference."""
    own = bench.CLIP_STEPS["tvl_fake.mp4"]
    replay = clip("tvl_fake.mp4")
    assert all("too_blurry" in o.refused for o in replay if o.face_count)
    assert state([moved(o, refused=()) for o in replay], own) == "passed"
    progress, judged = bench.judge(own, replay)
    assert (progress.state, progress.code, progress.done) == ("failed", "step_timeout", 0)
    assert judged.track == []  # no pose measured: no reference


@pytest.mark.slow
def test_a_real_clip_blurred_fails_and_its_motion_blur_does_not(yunet: YuNet, clip: Clips) -> None:
    """tvl_real passes with its own blurred polls (its nod: too_blurry for 2 s), and fails
    once every frame is blurred as a screen replay blurs it (in memory, sigma 3 px)."""
    own = bench.CLIP_STEPS["tvl_real.mp4"]
    assert any("too_blurry" in o.refused for o in clip("tvl_real.mp4"))
    assert state(clip("tvl_real.mp4"), own) == "passed"
    blurred = [
        bench.seen(yunet, t, cv2.GaussianBlur(frame, (0, 0), 3))
        for t, frame in bench.clip_frames(bench.VIDEO / "tvl_real.mp4")
    ]
    assert sum(o.face_count == 1 for o in blurred) > 0.9 * len(blurred)  # still found
    assert state([moved(o, refused=()) for o in blurred], own) == "passed"
    assert state(blurred, own) == "failed:step_timeout"


def test_a_frame_too_dark_or_overexposed_counts_as_no_face(yunet: YuNet) -> None:
    """A face too dark or too bright for the gates has no landmarks to trust: the judge sees
    no face (its time limits and face_lost run on); a blurred one it sees, gates and all."""
    _, frame = next(bench.clip_frames(bench.VIDEO / "tvl_real.mp4"))
    for image, code in (
        (frame // 8, "too_dark"),
        (np.minimum(frame.astype(np.int16) + 150, 255).astype(np.uint8), "overexposed"),
    ):
        faces = yunet.detect(image)
        assert len(faces) == 1 and code in bench.refused(image, faces)
        assert observation(1.0, faces, refused=bench.refused(image, faces)).face_count == 0
    faces = yunet.detect(frame)
    kept = observation(1.0, faces, refused=("too_blurry",))
    assert (kept.face_count, kept.refused) == (1, ("too_blurry",))


# ---- prints --------------------------------------------------------------------------------
PRINT_PHOTOS = [f"{source}_1" for source in bench.TUNING_SOURCES + bench.HELD_OUT_SOURCES]
TURN_WARPS = [w for w in bench.WARPS if w.axis == "yaw"]


@pytest.mark.slow
@pytest.mark.parametrize("photo", PRINT_PHOTOS)
def test_a_print_turned_at_every_angle_fails_the_turns(yunet: YuNet, photo: str) -> None:
    (path,) = bench.DEV_LIVE.glob(f"{photo}.*")
    results = {}
    for warp in TURN_WARPS:
        observations = bench.warp_observations(yunet, path, warp)
        assert len(observations) == 22  # 5.5 s at 4 Hz
        for steps in bench.warp_steps(warp):
            results[warp.family, steps] = state(observations, steps)
    assert [key for key, result in results.items() if result == "passed"] == []


@pytest.mark.slow
def test_a_print_following_a_challenge_fails(yunet: YuNet) -> None:
    """The print tilted for the looks (which it can pass) and turned for the turn."""
    (path,) = bench.DEV_LIVE.glob("jomariya_2.*")
    steps = ("look_down", "turn_left", "look_up")
    for angle in (30, 45, 60):
        for sign in (1, -1):
            warps = [
                bench.Warp("pitch", 45, 25),
                bench.Warp("yaw", sign * angle, 25),
                bench.Warp("pitch", -45, 25),
            ]
            progress, _ = bench.judge(steps, bench.attack_observations(yunet, path, warps))
            assert progress.state == "failed", (angle, sign)
            assert progress.done == 1, (angle, sign)  # it looked down, then failed the turn


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the judge alone (docs/evaluator/head-turn.md): a one-turn challenge is passed by "
    "a print turned while the reference is taken; drawn challenges ask both turns",
)
def test_a_print_turned_while_the_reference_is_taken_fails_the_turn(yunet: YuNet) -> None:
    """A print held at 45 degrees while the frontal reference is taken (YuNet's nose stays
    among its eyes and mouth: it passes as frontal), then swung to -45: the aspect is judged
    against the narrowed reference (about 1 at the far side) and YuNet's landmarks on the
    foreshortened print give parallax 0.05-0.12. 70 of 192 such swings (30-60 degrees, 25
    and 40 cm, the 16 print photos) passed the turn toward the swing, none the other way."""
    (path,) = bench.DEV_LIVE.glob("wolf_1.*")
    passed = []
    for start, steps in ((45, ("turn_left",)), (-45, ("turn_right",))):
        swing = bench.Warp("yaw", -start, 25, start=start)
        progress, _ = bench.judge(steps, bench.warp_observations(yunet, path, swing))
        if progress.state == "passed":
            passed.append(start)
    assert passed == []


@pytest.mark.slow
@pytest.mark.parametrize("start", [45, -45])
def test_a_print_turned_while_the_reference_is_taken_fails_both_turns(
    yunet: YuNet, start: int
) -> None:
    """Every drawn challenge asks both turns (draw_steps). The swing through frontal answers
    the turn toward it; the other turn asks the print to turn further from frontal than its
    reference, where it narrows. Either order, each turn answered by its best motion."""
    (path,) = bench.DEV_LIVE.glob("wolf_1.*")
    toward, other = ("turn_left", "turn_right") if start > 0 else ("turn_right", "turn_left")
    swing = bench.Warp("yaw", -start, 25, start=start)
    further = bench.Warp("yaw", start + math.copysign(30, start), 25, start=start)
    for steps, warps in (((toward, other), (swing, further)), ((other, toward), (further, swing))):
        progress, _ = bench.judge(steps, bench.attack_observations(yunet, path, warps))
        assert progress.state == "failed", (steps, progress)


# ---- rules on real trajectories ------------------------------------------------------------
def _turn(clip: Clips) -> list[Observation]:
    """tvl_real up to the end of its first turn (the person's own left)."""
    return [o for o in clip("tvl_real.mp4") if o.t < 5.5]


@pytest.mark.slow
def test_a_slow_step_times_out(clip: Clips) -> None:
    turn = _turn(clip)
    assert state(turn, ("turn_left",)) == "passed"
    slow = [moved(o, t=o.t * 3) for o in turn]  # reached at 6.8 s instead of 2.3 s
    assert state(slow, ("turn_left",), step_s=5.0, max_gap_s=2.0, poll_s=0.75) == (
        "failed:step_timeout"
    )


@pytest.mark.slow
def test_a_step_reached_after_its_time_limit_fails(clip: Clips) -> None:
    """The limit holds on the frame that reaches the step too: with polls up to 1.5 s apart
    (max_gap_s), a late step was passed when the poll before it was still in time."""
    turn = _turn(clip)
    judge = HeadTurnJudge(("turn_left",))
    shown = reached = None
    for obs in turn:
        progress = judge.observe(obs)
        if shown is None and progress.instruction == "turn_left":
            shown = obs.t
        if progress.state == "passed":
            reached = obs.t
            break
    assert shown is not None and reached is not None  # 0.27 s, 2.27 s
    late = reached - shown - 0.1  # the poll before the reaching one is still within it
    assert [o.t for o in turn if shown < o.t < reached][-1] - shown < late
    assert state(turn, ("turn_left",), step_s=late) == "failed:step_timeout"
    # and the reference, taken on the second frame (0.27 s after the first poll)
    assert state(turn, ("turn_left",), reference_s=0.2) == "failed:step_timeout"


@pytest.mark.slow
def test_a_lost_face_fails(clip: Clips) -> None:
    turn = _turn(clip)
    blank = [moved(o, face_count=0) if 0.5 < o.t < 2.2 else o for o in turn]
    assert state(blank, ("turn_left",)) == "failed:face_lost"
    short = [moved(o, face_count=0) if 1.0 < o.t < 1.6 else o for o in turn]
    assert state(short, ("turn_left",)) == "passed"  # two polls missed: under 1.5 s


@pytest.mark.slow
def test_a_face_swapped_between_polls_fails(clip: Clips) -> None:
    turn = _turn(clip)
    other = clip("mounish_face.mp4")[5]
    swapped = [moved(other, t=o.t) if abs(o.t - 1.5) < 0.01 else o for o in turn]
    assert len([o for o in swapped if o.box == other.box]) == 1
    assert state(swapped, ("turn_left",)) == "failed:face_changed"
    # the same face jumping across the image between two polls
    jumped = [moved(o, box=(o.box[0] + 300, *o.box[1:])) if o.t > 1.4 else o for o in turn]
    assert state(jumped, ("turn_left",)) == "failed:face_changed"


@pytest.mark.slow
@pytest.mark.parametrize("every", [2, 3, 4, 5, 6])
def test_a_splice_of_two_people_fails_however_far_apart_the_polls(clip: Clips, every: int) -> None:
    """tvl_real, then mounish_face's frames as they are, polled every 0.25 s x ``every`` (up
    to max_gap_s). With limits growing with the gap without a cap, the splice went unseen
    from 0.75 s on (the box moves 1.45-1.49 face sizes: under 0.6 x 3) and the challenge
    failed only on step_timeout."""
    first = [o for o in clip("tvl_real.mp4") if o.t < 1.6]
    spliced = [*first, *clip("mounish_face.mp4")]
    polled = [moved(o, t=i * 0.25) for i, o in enumerate(spliced)][::every]
    assert state(polled, ("turn_left", "turn_right", "look_up")) == "failed:face_changed"


@pytest.mark.slow
@pytest.mark.parametrize("name", TURNING + STILL)
def test_real_clips_polled_up_to_max_gap_apart_stay_continuous(clip: Clips, name: str) -> None:
    """Any two frames with a face 0.25 to 1.5 s apart follow each other without face_changed
    (the closest to a limit: pyis_real_zubair's turn to profile, 0.85 of the capped shift)."""
    seen = [o for o in clip(name) if o.face_count == 1]
    pairs = [(a, b) for k in range(1, 7) for a, b in zip(seen, seen[k:], strict=False)]
    changed = []
    for a, b in pairs:
        judge = HeadTurnJudge(("turn_left",))
        judge.observe(a)
        if b.t - a.t <= Limits().max_gap_s and judge.observe(b).code == "face_changed":
            changed.append((a.t, b.t))
    assert len(pairs) > 40 and changed == []


@pytest.mark.slow
def test_a_second_face_fails(clip: Clips) -> None:
    turn = _turn(clip)
    crowded = [moved(o, face_count=2) if abs(o.t - 1.0) < 0.01 else o for o in turn]
    assert state(crowded, ("turn_left",)) == "failed:multiple_faces"


def test_the_main_face_is_the_one_the_quality_gates_judge() -> None:
    """YuNet lists faces best score first; the judge follows the largest, as the gates do
    (ml.yunet.largest), and counts a face of about its size beside it."""
    marks = ((0.0, 0.0),) * 5
    small, large = Face((0, 0, 80, 90), marks, 0.95), Face((200, 0, 100, 120), marks, 0.9)
    assert observation(1.0, [small, large]).box == large.box
    assert observation(1.0, [small, large]).face_count == 2
    assert observation(1.0, [small, large], max_other_face_ratio=0.9).face_count == 1
    assert observation(1.0, []).face_count == 0


@pytest.mark.parametrize(
    ("main_box", "other_box", "count"),
    [
        # beside a 100 x 200 face (size 141), a 62 x 62 one: shorter side 0.62 of the main
        # face's, size 0.44
        ((0, 0, 100, 200), (300, 0, 62, 62), 1),
        # beside a 100 x 100 face, a 50 x 150 one: shorter side 0.5, size 0.87
        ((0, 0, 100, 100), (300, 0, 50, 150), 2),
    ],
)
def test_another_face_counts_as_the_multiple_faces_gate_counts_it(
    main_box: Box, other_box: Box, count: int
) -> None:
    """One rule for a second face (ml.quality.other_face_ratios: sizes as the square root of
    the box's area, at max_other_face_ratio or over), on boxes where a shorter-side rule
    would decide the other way."""
    marks = ((0.0, 0.0),) * 5
    main, other = Face(main_box, marks, 0.9), Face(other_box, marks, 0.9)
    measures = quality.measure(np.zeros((480, 640, 3), np.uint8), main, [main, other])
    gate = "multiple_faces" in quality.failures(measures, quality.QualityThresholds())
    assert observation(1.0, [main, other]).face_count == count
    assert gate == (count > 1)


@pytest.mark.slow
def test_too_few_frames_in_a_step_fails(clip: Clips) -> None:
    turn = _turn(clip)
    # the reference, then straight to the turned head: one frame for the whole step
    skipping = [o for o in turn if o.t < 0.3 or o.t > 2.9]
    assert state(skipping, ("turn_left",), max_shape=1.0, max_shift=2.0, max_gap_s=3.0) == (
        "failed:too_few_frames"
    )


@pytest.mark.slow
def test_a_flood_of_polls_adds_no_frames(clip: Clips) -> None:
    turn = _turn(clip)
    judge = HeadTurnJudge(("turn_left",))
    for o in turn[:4]:
        judge.observe(o)
    frames = judge.to_state()["frames"]
    for k in range(20):  # 20 polls within 50 ms
        judge.observe(moved(turn[3], t=turn[3].t + 0.0025 * (k + 1)))
    assert judge.to_state()["frames"] == frames


# ---- state ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("order", ["own", "reversed"])
def test_state_round_trips_between_polls(clip: Clips, order: str) -> None:
    steps = bench.CLIP_STEPS["tvl_real.mp4"]
    if order == "reversed":
        steps = steps[::-1]
    kept = HeadTurnJudge(steps)
    stored = HeadTurnJudge(steps).to_state()
    for obs in clip("tvl_real.mp4"):
        expected = kept.observe(obs)
        judge = HeadTurnJudge.from_state(json.loads(json.dumps(stored)))
        assert judge.observe(obs) == expected
        stored = judge.to_state()
    assert kept.progress().state == ("passed" if order == "own" else "failed")


@pytest.mark.slow
def test_state_stays_small(clip: Clips) -> None:
    """A minute of polls from someone who never turns: the state stops growing."""
    judge = HeadTurnJudge(("turn_left", "look_up", "turn_right"), Limits(step_s=1e6))
    observations = clip("mounish_face.mp4")
    sizes = []
    for loop in range(5):
        for obs in observations:
            judge.observe(moved(obs, t=obs.t + loop * 13.0))
            sizes.append(len(json.dumps(judge.to_state())))
    assert judge.progress().state == "running"
    assert max(sizes) < 6000
    assert max(sizes[-50:]) <= max(sizes[:250]) + 200  # bounded, not growing with polls


# What a decided challenge's stored judge keeps: steps, phase, its code, times, frame counts.
DECIDED_KEEPS = {"v", "steps", "phase", "index", "done", "code", "phase_t", "phase_frames"}
DECIDED_KEEPS |= {"frames", "seen_t", "last_t", "failed_in"}


@pytest.mark.parametrize("order", ["own", "reversed"])
def test_a_decided_record_keeps_no_face_and_reads_back(clip: Clips, order: str) -> None:
    """Every field of the state is either the face (FACE_FIELDS, dropped once decided) or one
    of what a decided challenge keeps: a new field must be put on one side. The record still
    reads back as a judge, in its final phase."""
    fields = set(HeadTurnJudge(("turn_left", "turn_right", "look_up")).to_state())
    assert fields - set(FACE_FIELDS) == DECIDED_KEEPS
    steps = ("turn_left", "turn_right", "look_down", "look_up")
    judge = HeadTurnJudge(steps if order == "own" else tuple(reversed(steps)))
    for obs in clip("tvl_real.mp4"):
        if judge.observe(obs).state != "running":
            break
    record = judge.to_record()
    assert set(record) == DECIDED_KEEPS and judge.to_state()["track"]
    again = HeadTurnJudge.from_state(record)
    assert (again.progress(), again.track) == (judge.progress(), [])


def test_no_face_at_all_runs_out_the_reference_time_not_face_lost() -> None:
    judge = HeadTurnJudge(("turn_left", "turn_right", "look_up"))
    empty = [Observation(t / 4, (0, 0, 0, 0), [[0.0, 0.0]] * 5, 0) for t in range(42)]
    assert [judge.observe(o).state for o in empty[:41]] == ["running"] * 41  # up to 10 s
    assert judge.observe(empty[41]).code == "step_timeout"


def test_more_time_extends_the_phase_running_by_a_step(clip: Clips) -> None:
    """A still frontal face: the reference, then step 1 times out after step_s; each extend()
    asked during the step adds step_s. Before a face is seen there is nothing to extend."""
    still = clip("mounish_face.mp4")[0]

    def failed_after(extensions: int) -> float:
        judge = HeadTurnJudge(("turn_left", "turn_right", "look_up"))
        assert judge.extend() is False  # no poll yet: no time limit runs
        for i in range(400):
            progress = judge.observe(moved(still, i / 4))
            if progress.step == 1 and extensions:
                assert judge.extend() is True
                extensions -= 1
            if progress.state == "failed":
                assert progress.code == "step_timeout"
                return i / 4
        raise AssertionError("never failed")

    plain = failed_after(0)
    assert failed_after(1) == pytest.approx(plain + Limits().step_s, abs=0.3)
    assert failed_after(3) == pytest.approx(plain + 3 * Limits().step_s, abs=0.3)


def test_limits_from_settings() -> None:
    limits = Limits.from_mapping({"step_s": "6", "smooth": 3.0})
    assert (limits.step_s, limits.smooth) == (6.0, 3)
    assert isinstance(limits.smooth, int)
    with pytest.raises(ValueError, match="unknown head-turn limits: yaw_max"):
        Limits.from_mapping({"yaw_max": 1})


# A state as another version or damage leaves it: each refused by from_state, before observe
# would fail on it somewhere (an IndexError, numpy's ValueError, a TypeError).
NOT_THIS_JUDGES: dict[str, Any] = {
    "another version": {"v": 0},
    "no steps": {"steps": []},
    "an unknown step": {"steps": ["turn_left", "spin"]},
    "a step out of range": {"index": 1},
    "more done than asked": {"done": 2},
    "an unknown phase": {"phase": "straightening"},
    "an unknown code": {"code": "tired"},
    "a frame count not a count": {"frames": -1},
    "a time not a number": {"last_t": "soon"},
    "a box cut short": {"last_box": [1.0, 2.0, 3.0]},
    "four landmarks": {"reference": [[0.0, 0.0]] * 4},
    "a ragged track": {"track": [[1.0, 2.0]]},
    "a reference frame not a list": {"ref_frames": [None]},
}


@pytest.mark.parametrize("change", NOT_THIS_JUDGES.values(), ids=NOT_THIS_JUDGES.keys())
def test_a_state_this_judge_did_not_write_is_refused(change: dict[str, Any]) -> None:
    state = HeadTurnJudge(("turn_left",)).to_state()
    assert HeadTurnJudge.from_state(state).to_state() == state
    with pytest.raises(StateError):
        HeadTurnJudge.from_state({**state, **change})


# Past the reference (phases step and straight) every pose is measured against it: a state
# without it, or with a box aspect of 0 to divide by, or with no step left to ask, is refused.
PAST_REFERENCE = {"phase": "step", "reference": [[1.0, 2.0]] * 5, "ref_offset": [0.0, 0.1, 0.8]}
WITHOUT_A_REFERENCE: dict[str, Any] = {
    "no reference": {"reference": None},
    "no reference offset": {"ref_offset": None},
    "a zero aspect": {"ref_offset": [0.0, 0.1, 0]},
    "a negative aspect": {"ref_offset": [0.0, 0.1, -0.8]},
    "an infinite offset": {"ref_offset": [math.inf, 0.1, 0.8]},
    "every step done": {"done": 2},
    "straight, without a reference": {"phase": "straight", "reference": None},
}


@pytest.mark.parametrize("change", WITHOUT_A_REFERENCE.values(), ids=WITHOUT_A_REFERENCE.keys())
def test_a_state_past_its_reference_without_one_is_refused(change: dict[str, Any]) -> None:
    state = {**HeadTurnJudge(("turn_left", "turn_right")).to_state(), **PAST_REFERENCE}
    assert HeadTurnJudge.from_state(state).progress().instruction == "turn_left"
    with pytest.raises(StateError):
        HeadTurnJudge.from_state({**state, **change})


def test_a_failure_before_any_step_was_shown_says_step_0() -> None:
    """Failed while the reference is taken: step 0, as while it ran; its record says so too."""
    judge = HeadTurnJudge(("turn_left", "turn_right", "look_up"))
    two = Observation(0.0, (10, 10, 100, 120), [[40.0, 50.0]] * 5, 2)
    failed = judge.observe(two)
    assert (failed.state, failed.code, failed.step) == ("failed", "multiple_faces", 0)
    assert HeadTurnJudge.from_state(judge.to_record()).progress() == failed
    empty = [Observation(t / 4, (0, 0, 0, 0), [[0.0, 0.0]] * 5, 0) for t in range(42)]
    late = HeadTurnJudge(("turn_left", "turn_right", "look_up"))
    assert [late.observe(o) for o in empty][-1].step == 0  # step_timeout of the reference


@pytest.mark.parametrize("state", [None, "damaged", [1, 2]])
def test_a_state_not_an_object_is_refused(state: Any) -> None:
    with pytest.raises(StateError, match="another version"):
        HeadTurnJudge.from_state(state)


def test_bad_landmarks_are_refused() -> None:
    judge = HeadTurnJudge(("turn_left",))
    with pytest.raises(ValueError):
        judge.observe(Observation(0.0, (0, 0, 10, 10), [[float("nan"), 0.0]] * 5, 1))
