"""The head-turn challenge of a head_turn tenant's capture sessions (Django's test client, the
real engine and judge): the setting, steps revealed one at a time, the fail paths, the selfie
refused until the challenge passed, GET's fields, one unit per session, and sessions of other
tenants answered as before.

The server times the steps by its own clock; here that clock reads each frame's timestamp in
its clip (capture.challenge.clock), so a frame is judged at the moment it was filmed whatever
the machine's load. tests/system/test_challenge_http.py feeds the clips in real time."""

import itertools
import json
import logging
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any

import cv2
import numpy as np
import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.test.client import Client
from drf_spectacular.generators import SchemaGenerator
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse

from accounts.models import Tenant
from capture import challenge, service
from capture.models import CaptureSession
from facia_site.env import env_steps
from liveness.models import LivenessCheck
from ml import headturn
from tests.accounts.test_admin import INLINE_MANAGEMENT
from tests.capture.clips import HEAD_TURNS, Clip, frames, jpeg
from tests.capture.sessions import open_session, post, verdict
from tests.conftest import DEV_DATA, LIVE_JPG, b64, data_uri
from tests.guard.test_admin_permissions import staff

pytestmark = pytest.mark.usefixtures("warm_engine")
POLLS_PER_S = 4  # at most what capture.js sends (each quality call, then 250 ms)
QUALITY_KEYS = {"passed", "code", "error", "failures", "face", "capture", "width", "height"}
READ_KEYS = {"session_id", "state", "expires_at", "capture", "frames", "liveness_result"}


class Clock:
    """The server's clock, set to each frame's time in its clip."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(challenge, "clock", fake)
    return fake


@pytest.fixture(autouse=True)
def polls_unthrottled(settings: Any) -> None:
    """A clip's frames go in as fast as the engine answers, not at the poll rate."""
    settings.SESSION_QUALITY_PER_S = 1000


class Session:
    """A head_turn tenant's open session, driven through HTTP."""

    def __init__(self, client: Client, tenant: Tenant, secret: str) -> None:
        self.client, self.tenant, self.secret = client, tenant, secret
        opened = open_session(client, secret)
        self.id, self.token = opened["session_id"], opened["token"]

    def quality(self, image: bytes, **extra: Any) -> Any:
        url = f"/sessions/{self.id}/quality"
        return post(self.client, url, {"selfie_image": b64(image), **extra}, self.token)

    def restart(self, body: Any = None) -> Any:
        return post(self.client, f"/sessions/{self.id}/challenge", body or {}, self.token)

    def selfie(self, image: str | None = None) -> Any:
        body = {"selfie_image": image or data_uri(LIVE_JPG)}
        return post(self.client, f"/sessions/{self.id}/selfie", body, self.token)

    def read(self) -> dict[str, Any]:
        answer = verdict(self.client, self.id, self.secret)
        assert answer.status_code == 200, answer.content
        body: dict[str, Any] = answer.json()
        return body

    def stored(self) -> CaptureSession:
        return CaptureSession.objects.get(pk=self.id)

    def play(self, clip: Clip, clock: Clock, stop_when_done: bool = True) -> list[dict[str, Any]]:
        """The clip's frames at the poll rate, each at its own time; every challenge answer."""
        seen = []
        for frame in frames(clip.name, POLLS_PER_S):
            clock.t = 1_000_000.0 + frame.t
            answer = self.quality(jpeg(frame.image))
            assert answer.status_code == 200, answer.content
            seen.append(answer.json()["challenge"])
            if stop_when_done and seen[-1]["state"] != "running":
                break
        return seen


@pytest.fixture
def head_turn(make_tenant: Any, client: Client) -> Iterator[Any]:
    def make(limit: int = 5) -> Session:
        tenant, secret = make_tenant(f"ht{Tenant.objects.count()}", request_limit=limit)
        tenant.challenge = "head_turn"
        tenant.save(update_fields=["challenge"])
        return Session(client, tenant, secret)

    yield make


PHASES = {"reference", "step", "straight"}  # ml.headturn's internal phases


def strings_in(value: Any) -> set[str]:
    """Every string value (not key) in a JSON structure."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value))
    return set()


def validate(response: Any, method: str, path: str) -> None:
    """``response`` against the published OpenAPI schema."""
    schema = OpenAPI.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    request = RequestFactory().generic(method, path.replace("x", str(uuid.uuid4())))
    schema.validate_response(DjangoOpenAPIRequest(request), DjangoOpenAPIResponse(response))


# --- the tenant setting ------------------------------------------------------------------


def test_create_tenant_sets_the_challenge_and_the_history_says_so(db: None) -> None:
    call_command("create_tenant", "Turny", "--challenge", "head_turn", stdout=StringIO())
    call_command("create_tenant", "Plain", stdout=StringIO())
    assert Tenant.objects.get(name="Turny").challenge == "head_turn"
    assert Tenant.objects.get(name="Plain").challenge == "none"
    added = LogEntry.objects.filter(object_repr="Turny").order_by("pk").first()
    assert added is not None
    assert added.get_change_message() == "Added with challenge head_turn. (manage.py create_tenant)"
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_tenant", "Bad", "--challenge", "blink", stderr=StringIO())


def test_the_admin_changes_it_with_change_tenant_only_and_audits_it(
    db: None, admin_client: Client
) -> None:
    tenant = Tenant.objects.create(name="Switch")
    url = f"/admin/accounts/tenant/{tenant.pk}/change/"
    form = {"name": "Switch", "is_active": "on", "threshold": "0.5", "profile": "fast"}
    form |= {"crop_policy": "judge", "challenge": "head_turn", **INLINE_MANAGEMENT}
    form |= {"challenge_band": "0.75"}
    assert staff().post(url, form).status_code == 403  # a viewer
    tenant.refresh_from_db()
    assert tenant.challenge == "none"
    assert admin_client.post(url, form).status_code == 302
    tenant.refresh_from_db()
    assert tenant.challenge == "head_turn"
    entry = LogEntry.objects.filter(object_id=str(tenant.pk)).get()
    assert entry.get_change_message() == "Changed challenge none → head_turn."


def test_fixed_steps_are_read_checked_and_warned_about(caplog: Any, settings: Any) -> None:
    assert env_steps("FACIA_TEST_UNSET_STEPS") == ()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACIA_TEST_STEPS", "turn_right,look_up,turn_left")
        assert env_steps("FACIA_TEST_STEPS") == ("turn_right", "look_up", "turn_left")
        patch.setenv("FACIA_TEST_STEPS", "turn_right,cartwheel")
        with pytest.raises(ImproperlyConfigured, match="FACIA_TEST_STEPS"):
            env_steps("FACIA_TEST_STEPS")
    settings.CAPTURE_CHALLENGE_STEPS = ("turn_right", "look_up", "turn_left")
    with caplog.at_level(logging.WARNING, logger="capture"):
        apps.get_app_config("capture").ready()
    (record,) = [r for r in caplog.records if r.name == "capture"]
    assert record.levelno == logging.WARNING
    assert "turn_right,look_up,turn_left" in record.getMessage()
    caplog.clear()
    settings.CAPTURE_CHALLENGE_STEPS = ()
    apps.get_app_config("capture").ready()
    assert not [r for r in caplog.records if r.name == "capture"]


# --- steps, one at a time ----------------------------------------------------------------


def test_the_first_frame_starts_a_random_challenge_shown_one_step_at_a_time(
    head_turn: Any, clock: Clock
) -> None:
    still = [jpeg(f.image) for f in itertools.islice(frames("mounish_face.mp4", POLLS_PER_S), 3)]
    sequences = set()
    for _ in range(8):
        session = head_turn()
        assert session.read()["challenge"] == "pending"
        first = session.quality(still[0])
        assert first.status_code == 200
        # First the frontal reference: no step is shown yet.
        assert first.json()["challenge"] == {
            "instruction": "look_straight",
            "step": 0,
            "steps": 3,
            "done": 0,
            "state": "running",
            "tries_left": 2,
            "extensions_left": 10,
        }
        steps = tuple(session.stored().challenge_judge["judge"]["steps"])
        assert len(steps) == 3 and all(step in headturn.STEPS for step in steps)
        clock.t += 0.25
        second = session.quality(still[1]).json()["challenge"]
        assert (second["instruction"], second["step"]) == (steps[0], 1)
        for later in set(steps[1:]) - {steps[0]}:  # the steps to come are not in the answer
            assert later not in json.dumps(second)
        sequences.add(steps)
    assert len(sequences) > 1  # 8 draws of 34 sequences: all equal with p = 34**-7


def test_a_clip_in_its_own_order_passes_step_by_step(
    head_turn: Any, clock: Clock, settings: Any
) -> None:
    clip = HEAD_TURNS[0]
    settings.CAPTURE_CHALLENGE_STEPS = clip.steps
    session = head_turn()
    seen = session.play(clip, clock)
    assert seen[-1]["state"] == "passed", seen[-1]
    assert seen[-1]["instruction"] == "look_straight"
    shown = [(s["step"], s["instruction"]) for s in seen if s["instruction"] in headturn.STEPS]
    # Each step is shown, in order, until it is reached (then look_straight); never one ahead.
    assert [p for i, p in enumerate(shown) if i == 0 or p != shown[i - 1]] == [
        (i + 1, step) for i, step in enumerate(clip.steps)
    ]
    assert session.read()["challenge"] == "passed"
    # What is kept: numbers and the step names, never a frame.
    kept = session.stored().challenge_judge
    assert len(json.dumps(kept)) < 16_000
    assert strings_in(kept) <= {*headturn.INSTRUCTIONS, *headturn.STATES, *PHASES}
    validate(session.quality(jpeg(next(frames(clip.name)).image)), "POST", "/sessions/x/quality")


def test_the_same_clip_in_reverse_order_fails_with_a_code(
    head_turn: Any, clock: Clock, settings: Any
) -> None:
    clip = HEAD_TURNS[0]
    settings.CAPTURE_CHALLENGE_STEPS = tuple(reversed(clip.steps))
    session = head_turn()
    seen = session.play(clip, clock)
    assert seen[-1]["state"] == "failed"
    assert seen[-1]["code"] in headturn.FAIL_CODES
    assert seen[-1]["error"] == headturn.FAIL_CODES[seen[-1]["code"]]
    read = session.read()
    assert (read["challenge"], read["challenge_code"]) == ("failed", seen[-1]["code"])
    assert read["state"] == "open" and read["liveness_result"] is None


# The face in a judge's state: the box, the five landmarks and the poses measured from them.
FACE = {"last_box", "last_landmarks", "reference", "ref_offset", "ref_frames", "ref_offsets"}
FACE |= {"track", "reached"}


def judge_of(session: Session) -> dict[str, Any]:
    stored = session.stored().challenge_judge
    assert isinstance(stored, dict)
    judge: dict[str, Any] = stored["judge"]
    return judge


def test_a_decided_challenge_keeps_its_steps_result_and_times_not_the_face(
    head_turn: Any, clock: Clock, settings: Any
) -> None:
    """While a challenge runs its judge keeps the face (the reference's landmarks, the last
    box, the head's pose per poll): it judges the next poll by them. Passed or failed, nothing
    reads them again, and the UPDATE that stores the result drops them; the steps, the result
    and the times stay (the admin's view of the session), and a retry starts afresh."""
    clip = HEAD_TURNS[0]
    settings.CAPTURE_CHALLENGE_STEPS = clip.steps
    passing = head_turn()
    running_with_face = False
    for frame in frames(clip.name, POLLS_PER_S):
        clock.t = 1_000_000.0 + frame.t
        state = passing.quality(jpeg(frame.image)).json()["challenge"]["state"]
        if state != "running":
            break
        running_with_face |= bool(judge_of(passing)["track"])
    assert state == "passed" and running_with_face
    failing = head_turn()
    assert held_still_until_failed(failing, clock, 0)[-1]["state"] == "failed"
    for session, result in ((passing, "passed"), (failing, "failed")):
        judge = judge_of(session)
        assert set(judge).isdisjoint(FACE), judge
        assert (judge["phase"], judge["steps"]) == (result, list(clip.steps))
        assert judge["last_t"] is not None and judge["frames"] > 0
        assert session.read()["challenge"] == result
    assert failing.restart().json()["challenge"]["state"] == "running"
    assert judge_of(failing)["track"] == []  # a new judge, its face yet to be seen


def test_a_person_holding_still_fails_in_time(head_turn: Any, clock: Clock) -> None:
    session = head_turn()
    seen = session.play(Clip("mounish_face.mp4", ()), clock)
    assert seen[-1]["state"] == "failed", seen[-1]
    assert seen[-1]["code"] in headturn.FAIL_CODES
    assert seen[-1]["step"] == 1  # never got past the first


def held_still_until_failed(session: Session, clock: Clock, more_time: int) -> list[Any]:
    """A still frontal face polled at 4 Hz until the challenge fails, asking for more time on
    the first ``more_time`` polls of step 1; every challenge answer."""
    still = jpeg(next(frames("mounish_face.mp4")).image)
    start = clock.t
    seen: list[Any] = []
    while not seen or seen[-1]["state"] == "running":
        asked = bool(seen) and seen[-1]["step"] == 1 and more_time > 0
        more_time -= asked
        answer = session.quality(still, **({"more_time": True} if asked else {}))
        assert answer.status_code == 200, answer.content
        seen.append(answer.json()["challenge"])
        if asked:
            validate(answer, "post", "/sessions/x/quality")
        clock.t += 0.25
        assert clock.t - start < 120, "never failed"
    return seen


def test_more_time_extends_the_step_up_to_the_sessions_limit(
    head_turn: Any, clock: Clock, settings: Any
) -> None:
    """Each `more_time` poll adds a step's time (7 s) to the step running, WCAG 2.2.1, until
    the session has used CAPTURE_CHALLENGE_EXTENSIONS (across its retries); the rest of the
    judge is unchanged (a still face still fails step_timeout)."""
    settings.CAPTURE_CHALLENGE_EXTENSIONS = 2
    plain = held_still_until_failed(head_turn(), clock, 0)
    session = head_turn()
    extended = held_still_until_failed(session, clock, 3)
    assert plain[-1]["code"] == extended[-1]["code"] == "step_timeout"
    assert [a["extensions_left"] for a in extended[:6]] == [2, 2, 1, 0, 0, 0]
    polls_per_step = headturn.Limits().step_s * POLLS_PER_S
    assert len(extended) - len(plain) == pytest.approx(2 * polls_per_step, abs=1)
    again = session.restart().json()["challenge"]
    assert (again["state"], again["extensions_left"]) == ("running", 0)  # per session


def test_a_frame_without_the_face_does_not_advance(head_turn: Any, clock: Clock) -> None:
    session = head_turn()
    blank = jpeg(next(frames("mounish_face.mp4")).image * 0)
    answer = session.quality(blank).json()
    assert answer["code"] == "no_face" and answer["face"] is None
    assert (answer["challenge"]["instruction"], answer["challenge"]["step"]) == ("look_straight", 0)


def test_a_replay_too_blurred_for_the_selfie_never_gets_past_look_straight(
    head_turn: Any, clock: Clock, settings: Any
) -> None:
    """tvl_fake (tvl_real filmed off a screen) in its own order: its turns would pass on
    landmarks alone, but every frame fails too_blurry, and the frontal reference is taken only
    from a frame that passes every gate (as the selfie must)."""
    replay = Clip("tvl_fake.mp4", ("turn_left", "turn_right", "look_down", "look_up"))
    settings.CAPTURE_CHALLENGE_STEPS = replay.steps
    session = head_turn()
    codes = []
    seen = []
    for frame in frames(replay.name, POLLS_PER_S):
        clock.t = 1_000_000.0 + frame.t
        answer = session.quality(jpeg(frame.image)).json()
        codes.append({f["code"] for f in answer["failures"]})
        seen.append(answer["challenge"])
        if seen[-1]["state"] != "running":
            break
    assert all("too_blurry" in c for c in codes)
    assert {(s["instruction"], s["done"]) for s in seen} == {("look_straight", 0)}
    assert (seen[-1]["state"], seen[-1]["code"]) == ("failed", "step_timeout")
    assert session.read()["challenge_code"] == "step_timeout"


def test_a_clip_blurred_fails_where_it_passed_sharp(
    head_turn: Any, clock: Clock, settings: Any
) -> None:
    """The same frames of tvl_real that pass in its own order (its nod's own motion blur
    included: test_a_clip_in_its_own_order_passes_step_by_step) fail once each is blurred as
    a screen replay blurs it (sigma 3 px, in memory)."""
    clip = HEAD_TURNS[0]
    settings.CAPTURE_CHALLENGE_STEPS = clip.steps
    session = head_turn()
    for frame in frames(clip.name, POLLS_PER_S):
        clock.t = 1_000_000.0 + frame.t
        answer = session.quality(jpeg(cv2.GaussianBlur(frame.image, (0, 0), 3))).json()
        assert answer["face"] is None or "too_blurry" in {f["code"] for f in answer["failures"]}
        if answer["challenge"]["state"] != "running":
            break
    assert (answer["challenge"]["state"], answer["challenge"]["done"]) == ("failed", 0)
    assert answer["challenge"]["code"] == "step_timeout"


def beside_itself(fx: float, fy: float) -> bytes:
    """A dev full frame with a copy of itself beside it, scaled ``fx`` by ``fy``: a second
    face whose box has another shape than the main face's."""
    photo = cv2.imread(str(DEV_DATA / "live" / "jomariya_2.jpg"))  # 1455 x 1944
    assert photo is not None
    main = cv2.resize(photo, (360, 480), interpolation=cv2.INTER_AREA)
    other = cv2.resize(main, None, fx=fx, fy=fy, interpolation=cv2.INTER_AREA)
    canvas = np.full((main.shape[0], main.shape[1] + other.shape[1], 3), 120, np.uint8)
    canvas[:, : main.shape[1]] = main
    canvas[: other.shape[0], main.shape[1] :] = other
    return jpeg(canvas, width=None, quality=95)


@pytest.mark.parametrize(
    ("fx", "fy", "second_face"),
    [
        # YuNet's box of the copy: size (sqrt of the area) 0.66 of the main face's, shorter
        # side 0.53
        (0.45, 0.9, True),
        # size 0.57, shorter side 0.65
        (0.66, 0.33, False),
    ],
)
def test_a_second_face_fails_the_challenge_as_the_quality_gate_counts_it(
    head_turn: Any, clock: Clock, fx: float, fy: float, second_face: bool
) -> None:
    """The quality report's multiple_faces and the challenge's are one rule at the
    deployment's max_other_face_ratio, on second faces a shorter-side rule would count the
    other way."""
    answer = head_turn().quality(beside_itself(fx, fy)).json()
    assert ("multiple_faces" in [f["code"] for f in answer["failures"]]) == second_face
    assert answer["challenge"]["state"] == ("failed" if second_face else "running")
    assert answer["challenge"].get("code") == ("multiple_faces" if second_face else None)
    assert answer["challenge"]["step"] == 0  # no step shown: failed while the reference is taken


def test_more_time_on_the_frame_that_fails_the_challenge_spends_no_extension(
    head_turn: Any, clock: Clock
) -> None:
    """An extension is spent on a challenge that goes on running: the frame asking for it
    that fails the challenge (a second face) leaves the session's count as it was."""
    session = head_turn()
    still = jpeg(next(frames("mounish_face.mp4")).image)
    first = session.quality(still).json()["challenge"]
    assert (first["state"], first["extensions_left"]) == ("running", 10)
    clock.t += 0.25
    failed = session.quality(beside_itself(0.45, 0.9), more_time=True).json()["challenge"]
    assert (failed["state"], failed["code"]) == ("failed", "multiple_faces")
    assert failed["extensions_left"] == 10
    assert session.restart().json()["challenge"]["extensions_left"] == 10


# --- the selfie --------------------------------------------------------------------------


def test_selfie_is_refused_until_the_challenge_passed_then_judged_once(
    head_turn: Any, clock: Clock, settings: Any, client: Client
) -> None:
    clip = HEAD_TURNS[0]
    settings.CAPTURE_CHALLENGE_STEPS = clip.steps
    session = head_turn()
    early = session.selfie()  # not started
    assert early.status_code == 409
    assert early.json() == {
        "error": "Complete the head-turn challenge before sending the selfie.",
        "code": "challenge_not_passed",
    }
    validate(early, "POST", "/sessions/x/selfie")
    session.quality(jpeg(next(frames(clip.name)).image))
    assert session.selfie().json()["code"] == "challenge_not_passed"  # running
    assert session.play(clip, clock)[-1]["state"] == "passed"
    assert LivenessCheck.objects.filter(tenant=session.tenant).count() == 0

    last = list(frames(clip.name))[-1].image  # frontal again, full size
    taken = session.selfie(data_uri_of(last))
    assert taken.status_code == 202, taken.content
    read = session.read()
    assert read["state"] == "done" and read["challenge"] == "passed"
    # Live only if the passive check passes too: the same image on /liveness gives the same.
    passive = post(
        client, "/liveness", {"hash_id": session.secret, "selfie_image": data_uri_of(last)}
    )
    assert passive.status_code == 201
    assert read["liveness_result"]["is_live"] == passive.json()["liveness_result"]["is_live"]
    session.tenant.refresh_from_db()
    assert session.tenant.requests_used == 2  # the session's one unit, then /liveness's
    validate(verdict(client, session.id, session.secret), "GET", "/sessions/x")


def data_uri_of(image: Any) -> str:
    return "data:image/jpeg;base64," + b64(jpeg(image, None, 92))


def test_a_failed_challenge_refuses_the_selfie_and_a_retry_draws_again(
    head_turn: Any, clock: Clock, settings: Any
) -> None:
    settings.CAPTURE_CHALLENGE_TRIES = 2
    session = head_turn()
    still = Clip("mounish_face.mp4", ())
    assert session.play(still, clock)[-1]["state"] == "failed"
    refused = session.selfie()
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "challenge_failed" and body["reason"] in headturn.FAIL_CODES
    assert "POST /sessions/{id}/challenge" in body["error"]
    validate(refused, "POST", "/sessions/x/selfie")
    assert session.read()["challenge_tries_left"] == 1

    again = session.restart({"steps": ["turn_left", "turn_left", "turn_left"]})  # ignored
    assert again.status_code == 200, again.content
    shown = again.json()["challenge"]
    assert (shown["step"], shown["state"], shown["tries_left"]) == (0, "running", 0)
    stored = session.stored()
    assert stored.challenge == "running" and stored.challenge_code == ""
    assert stored.challenge_judge["judge"]["steps"] != ["turn_left"] * 3
    assert session.read()["challenge"] == "pending"
    validate(again, "POST", "/sessions/x/challenge")

    assert session.play(still, clock)[-1]["state"] == "failed"
    spent = session.restart()
    assert spent.status_code == 409
    exhausted = {
        "error": "This session has used its 2 challenges; start a new session.",
        "code": "challenge_tries_exhausted",
    }
    assert spent.json() == exhausted
    # The selfie points to a new session, not to a retry that cannot start; GET says so.
    last = session.selfie()
    assert (last.status_code, last.json()) == (409, exhausted)
    validate(last, "POST", "/sessions/x/selfie")
    read = session.read()
    assert (read["challenge"], read["challenge_tries_left"]) == ("failed", 0)
    validate(verdict(session.client, session.id, session.secret), "GET", "/sessions/x")
    session.tenant.refresh_from_db()
    assert session.tenant.requests_used == 0  # no verdict, no unit


def test_the_browser_cannot_choose_the_steps(head_turn: Any, clock: Clock, settings: Any) -> None:
    """Neither a quality body nor a challenge body names the steps: the server draws them."""
    settings.CAPTURE_CHALLENGE_STEPS = ("turn_right", "look_up", "turn_left")
    session = head_turn()
    image = b64(jpeg(next(frames("mounish_face.mp4")).image))
    url = f"/sessions/{session.id}/quality"
    wish = {"steps": ["turn_left"], "CAPTURE_CHALLENGE_STEPS": "turn_left", "challenge": "none"}
    answer = post(session.client, url, {"selfie_image": image, **wish}, session.token)
    assert answer.json()["challenge"]["state"] == "running"
    assert session.stored().challenge_judge["judge"]["steps"] == [
        "turn_right",
        "look_up",
        "turn_left",
    ]
    once_passed = session.stored()
    once_passed.challenge = "passed"
    once_passed.save(update_fields=["challenge"])
    refused = session.restart()
    assert refused.json()["code"] == "challenge_already_passed"


# --- other tenants -----------------------------------------------------------------------


def test_sessions_of_other_tenants_answer_as_before(make_tenant: Any, client: Client) -> None:
    tenant, secret = make_tenant(request_limit=5)
    opened = open_session(client, secret)
    sid, token = opened["session_id"], opened["token"]
    quality = post(client, f"/sessions/{sid}/quality", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert set(quality.json()) == QUALITY_KEYS
    restart = post(client, f"/sessions/{sid}/challenge", {}, token)
    assert restart.status_code == 409
    assert restart.json() == {
        "error": "This session has no challenge.",
        "code": "challenge_not_required",
    }
    assert verdict(client, sid, secret).json()["challenge"] == "not_required"
    selfie = post(client, f"/sessions/{sid}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert selfie.status_code == 202
    assert selfie.json() == {"session_id": sid, "state": "received", "frames": 1}
    read = verdict(client, sid, secret).json()
    assert set(read) == READ_KEYS | {"refused", "message", "challenge"}
    assert read["challenge"] == "not_required" and "challenge_code" not in read
    tenant.refresh_from_db()
    assert tenant.requests_used == 1


def test_a_session_keeps_the_challenge_it_was_opened_with(make_tenant: Any, client: Client) -> None:
    """Switching the tenant's setting changes its next sessions, not one already open."""
    tenant, secret = make_tenant()
    before = open_session(client, secret)["session_id"]
    tenant.challenge = "head_turn"
    tenant.save(update_fields=["challenge"])
    after = open_session(client, secret)["session_id"]
    assert verdict(client, before, secret).json()["challenge"] == "not_required"
    assert verdict(client, after, secret).json()["challenge"] == "pending"


# --- a stored state this judge cannot continue ----------------------------------------------

# A running challenge's stored column, made as another version of the service or damage
# would leave it (each must not be a 500 on every frame until the session expires).
DAMAGED: dict[str, Any] = {
    "an older judge's": lambda c: {**c, "judge": {**c["judge"], "v": headturn.STATE_VERSION - 1}},
    "a newer judge's": lambda c: {**c, "judge": {**c["judge"], "v": headturn.STATE_VERSION + 1}},
    "no judge": lambda c: {"progress": c["progress"]},
    "steps not a list": lambda c: {**c, "judge": {**c["judge"], "steps": "turn_left"}},
    "a reference cut short": lambda c: {
        **c,
        "judge": {**c["judge"], "reference": c["judge"]["reference"][:4]},
    },
    "a ragged track": lambda c: {**c, "judge": {**c["judge"], "track": [[1.0, 2.0]]}},
    "not an object": lambda c: "damaged",
    # Well typed, each field alone, but a step asked without the reference it is measured by.
    "no reference past it": lambda c: {**c, "judge": {**c["judge"], "reference": None}},
    "no reference offset past it": lambda c: {**c, "judge": {**c["judge"], "ref_offset": None}},
    "a reference of zero aspect": lambda c: {
        **c,
        "judge": {**c["judge"], "ref_offset": [*c["judge"]["ref_offset"][:2], 0]},
    },
    "every step done while one is asked": lambda c: {
        **c,
        "judge": {**c["judge"], "done": len(c["judge"]["steps"])},
    },
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_state_the_judge_cannot_continue_answers_409_and_a_new_challenge_replaces_it(
    head_turn: Any, clock: Clock, damage: Any
) -> None:
    still = [jpeg(f.image) for f in itertools.islice(frames("mounish_face.mp4", POLLS_PER_S), 4)]
    session = head_turn()
    for image in still[:2]:  # the reference taken, the first step asked
        assert session.quality(image).status_code == 200
        clock.t += 0.25
    assert session.stored().challenge_judge["judge"]["phase"] == "step"
    column = damage(session.stored().challenge_judge)
    CaptureSession.objects.filter(pk=session.id).update(challenge_judge=column)

    for image in still[2:]:  # every frame: the same answer, nothing changed
        refused = session.quality(image)
        clock.t += 0.25
        assert refused.status_code == 409, refused.content
        assert refused.json() == {
            "error": "This session's challenge cannot go on (stored by another version of the "
            "service, or damaged); start a new session.",
            "code": "challenge_unreadable",
        }
        validate(refused, "POST", "/sessions/x/quality")
        assert session.stored().challenge_judge == column
    assert session.read()["challenge"] == "pending"
    assert session.selfie().json()["code"] == "challenge_not_passed"
    session.tenant.refresh_from_db()
    assert session.tenant.requests_used == 0  # no unit spent
    assert not LivenessCheck.objects.exists()

    again = session.restart()  # while tries are left, a new challenge replaces it
    assert again.status_code == 200, again.content
    assert again.json()["challenge"]["step"] == 0
    assert session.quality(still[0]).status_code == 200


def test_a_session_deleted_during_its_challenge_call_is_unknown(
    head_turn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted between its token check and the challenge's write (its tenant deleted by an
    operator, or the session itself in the admin): the write's re-read raised, a 500 on the
    quality frame and on the retry. Now 404, as the token gets from then on."""
    from tests.capture.sessions import UNKNOWN_SESSION

    frame = jpeg(next(frames(HEAD_TURNS[0].name)).image)
    framed, retried = head_turn(), head_turn()
    gate_report, draw = service.gate_report, challenge.draw

    def report_then_delete_tenant(*args: Any, **kwargs: Any) -> Any:
        Tenant.objects.filter(pk=framed.tenant.pk).delete()
        return gate_report(*args, **kwargs)

    def draw_then_delete_session() -> Any:
        CaptureSession.objects.filter(pk=retried.id).delete()
        return draw()

    monkeypatch.setattr(service, "gate_report", report_then_delete_tenant)
    monkeypatch.setattr(challenge, "draw", draw_then_delete_session)
    for answer in (framed.quality(frame), retried.restart()):
        assert (answer.status_code, answer.json()) == (404, UNKNOWN_SESSION)
    assert not CaptureSession.objects.filter(pk__in=[framed.id, retried.id]).exists()
