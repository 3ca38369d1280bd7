"""A when_unsure tenant's capture sessions (Django's test client, the real engine and judge): a
selfie scored outside the band is done at once; one inside it is held (its unit taken, its
record not live) until the head-turn challenge passes (is_live 1, the selfie's own score) or
fails with no try left (is_live 0); one unit either way, one selfie per session; the band's
admin validation. Clips are fed at their own timestamps, as tests/capture/test_challenge_api.py
does (its Session, clock and unthrottled polls)."""

import logging
from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.test.client import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.models import DEFAULT_CHALLENGE_BAND, MAX_CHALLENGE_BAND, Tenant
from capture.models import CaptureSession
from liveness.models import LivenessCheck
from ml import headturn
from ml.profiles import logit
from tests.accounts.test_admin import INLINE_MANAGEMENT
from tests.capture.clips import HEAD_TURNS, Clip, frames, jpeg
from tests.capture.sessions import UNKNOWN_SESSION, post, verdict
from tests.capture.test_challenge_api import (  # noqa: F401 (fixtures)
    Clock,
    Session,
    clock,
    data_uri_of,
    polls_unthrottled,
    validate,
)
from tests.conftest import LIVE_JPG, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")
CLIP = HEAD_TURNS[0]


def score_of(client: Client, make_tenant: Any, image: str) -> float:
    """The image's score on /liveness for a plain tenant of the default threshold."""
    _, secret = make_tenant(f"probe{Tenant.objects.count()}")
    answer = post(client, "/liveness", {"hash_id": secret, "selfie_image": image})
    assert answer.status_code == 201, answer.content
    return float(answer.json()["liveness_result"]["liveness_score"])


def distance(score: float, threshold: float = 0.5) -> float:
    return abs(logit(score) - logit(threshold))


@pytest.fixture
def frontal() -> str:
    """The head-turn clip's last frame (frontal again), full size: a selfie of the person who
    then turns their head in the same clip."""
    return data_uri_of(list(frames(CLIP.name))[-1].image)


@pytest.fixture
def when_unsure(make_tenant: Any, client: Client) -> Any:
    def make(band: float, limit: int = 5) -> Session:
        tenant, secret = make_tenant(
            f"unsure{Tenant.objects.count()}",
            request_limit=limit,
            challenge="when_unsure",
            challenge_band=band,
        )
        return Session(client, tenant, secret)

    return make


def units(session: Session) -> int:
    session.tenant.refresh_from_db()
    return session.tenant.requests_used


def verdicts(session: Session) -> dict[tuple[str, str], float]:
    """This process's facia_liveness_verdicts_total of the session's tenant, by (outcome,
    reason), for the outcomes a when_unsure selfie can count."""
    tenant = session.tenant
    keys = [("live", ""), ("spoof", ""), ("unsure", ""), ("live", "challenge")]
    keys += [("spoof", "challenge")]
    labels = {"tenant_id": str(tenant.pk), "tenant": tenant.name}
    return {
        key: REGISTRY.get_sample_value(
            "facia_liveness_verdicts_total", {**labels, "outcome": key[0], "reason": key[1]}
        )
        or 0.0
        for key in keys
    }


def counted(before: dict[tuple[str, str], float], session: Session) -> dict[tuple[str, str], float]:
    """What the session's tenant counted since ``before`` (nonzero only)."""
    after = verdicts(session)
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def record_of(session: Session) -> LivenessCheck:
    (check,) = LivenessCheck.objects.filter(tenant=session.tenant)
    return check


def check_lines(caplog: pytest.LogCaptureFixture, session: Session) -> list[dict[str, str]]:
    """The session's tenant's check log lines (liveness.checks), each as its key=value pairs."""
    prefix = f"check tenant={session.tenant.pk} "
    lines = [r.getMessage() for r in caplog.records if r.name == "liveness.checks"]
    return [dict(i.split("=", 1) for i in t.split()[1:]) for t in lines if t.startswith(prefix)]


def assert_logged(caplog: pytest.LogCaptureFixture, session: Session, is_live: bool) -> None:
    """Two check lines for the held selfie: not live when held, then the final verdict with
    the check's own request id, score and capture, decided by the challenge."""
    held_line, final = check_lines(caplog, session)
    assert held_line["is_live"] == "False" and "reason" not in held_line
    assert final["is_live"] == str(is_live) and final["reason"] == "challenge"
    for key in ("request_id", "score", "capture"):
        assert final[key] == held_line[key], key


def test_a_sure_selfie_is_done_at_once(when_unsure: Any, client: Client, make_tenant: Any) -> None:
    image = data_uri(LIVE_JPG)
    score = score_of(client, make_tenant, image)
    session = when_unsure(band=distance(score) / 2)  # the score outside the band
    before = verdicts(session)
    assert session.read()["challenge"] == "not_required"
    taken = session.selfie(image)
    assert taken.status_code == 202, taken.content
    assert taken.json() == {"session_id": session.id, "state": "received", "frames": 1}
    read = session.read()
    assert read["state"] == "done" and read["challenge"] == "not_required"
    assert read["liveness_result"] == {"is_live": int(score >= 0.5), "liveness_score": score}
    assert record_of(session).is_live is (score >= 0.5)
    assert units(session) == 1
    assert counted(before, session) == {("live" if score >= 0.5 else "spoof", ""): 1}


def held(session: Session, image: str) -> dict[str, Any]:
    """Send the selfie; check the 202 and the session as held; the 202's body."""
    taken = session.selfie(image)
    assert taken.status_code == 202, taken.content
    validate(taken, "POST", "/sessions/x/selfie")
    body: dict[str, Any] = taken.json()
    assert body["challenge"]["state"] == "pending"
    read = session.read()
    assert (read["state"], read["challenge"], read["liveness_result"]) == ("open", "pending", None)
    assert record_of(session).is_live is False  # not live until the challenge passes
    assert units(session) == 1
    again = session.selfie(image)  # one verdict per session: no second selfie
    assert again.status_code == 409
    assert again.json()["code"] == "selfie_held"
    validate(again, "POST", "/sessions/x/selfie")
    return body


def test_an_unsure_selfie_is_live_once_the_challenge_passes_with_its_own_score(
    when_unsure: Any,
    client: Client,
    make_tenant: Any,
    frontal: str,
    clock: Clock,  # noqa: F811
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "liveness.checks")
    settings.CAPTURE_CHALLENGE_STEPS = CLIP.steps
    score = score_of(client, make_tenant, frontal)
    # The selfie takes the tenant's last unit: the challenge's calls need none.
    session = when_unsure(band=distance(score) + 0.5, limit=1)
    before = verdicts(session)
    body = held(session, frontal)
    assert body["challenge"] == {
        "state": "pending",
        "tries_left": settings.CAPTURE_CHALLENGE_TRIES,
        "extensions_left": settings.CAPTURE_CHALLENGE_EXTENSIONS,
    }
    assert counted(before, session) == {("unsure", ""): 1}
    seen = session.play(CLIP, clock)
    assert seen[-1]["state"] == "passed", seen[-1]
    read = session.read()
    assert read["state"] == "done" and read["challenge"] == "passed"
    assert read["liveness_result"] == {"is_live": 1, "liveness_score": score}
    assert record_of(session).is_live is True
    assert units(session) == 1
    assert counted(before, session) == {("unsure", ""): 1, ("live", "challenge"): 1}
    assert_logged(caplog, session, True)
    assert session.quality(jpeg(next(frames(CLIP.name)).image)).json()["state"] == "done"


def test_a_challenge_frame_judged_after_the_expiry_decides_nothing(
    when_unsure: Any,
    client: Client,
    make_tenant: Any,
    frontal: str,
    clock: Clock,  # noqa: F811
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each frame's token is checked before it is judged: the frame that passed the challenge
    could be written after the session expired, turning a session a GET had read
    ``expired`` into ``done`` and live. Written only before the expiry; after it, the frame
    is told token_expired, and the session stays expired, its selfie not live."""
    from capture import challenge

    settings.CAPTURE_CHALLENGE_STEPS = CLIP.steps
    score = score_of(client, make_tenant, frontal)
    session = when_unsure(band=distance(score) + 0.5)
    held(session, frontal)
    playing = list(frames(CLIP.name, 4))
    passing = len(session.play(CLIP, clock))  # how many frames pass it, on a twin
    session = when_unsure(band=distance(score) + 0.5)
    held(session, frontal)
    for frame in playing[: passing - 1]:
        clock.t = 1_000_000.0 + frame.t
        assert session.quality(jpeg(frame.image)).json()["challenge"]["state"] == "running"
    from liveness.checks import settle_held as settle

    def expiring_meanwhile(*args: Any) -> Any:
        CaptureSession.objects.filter(pk=session.id).update(expires_at=timezone.now())
        return settle(*args)

    monkeypatch.setattr(challenge, "settle_held", expiring_meanwhile)
    before = session.stored().challenge_version
    clock.t = 1_000_000.0 + playing[passing - 1].t
    last = session.quality(jpeg(playing[passing - 1].image))
    assert (last.status_code, last.json()["code"]) == (401, "token_expired")
    assert session.stored().challenge_version == before  # the frame wrote nothing
    read = session.read()
    assert (read["state"], read["liveness_result"]) == ("expired", None)
    assert record_of(session).is_live is False


def test_a_held_selfies_session_goes_with_its_record(
    when_unsure: Any,
    client: Client,
    make_tenant: Any,
    frontal: str,
    clock: Clock,  # noqa: F811
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The held selfie's record deleted before its challenge decides (prune_checks under
    LIVENESS_RETENTION_DAYS=0, or an admin honouring an erasure request): the session, a copy
    of that record's score, is deleted with it. The challenge's next poll is an unknown
    session's 404, nothing is decided or logged for it, and the unit stays spent."""
    caplog.set_level(logging.INFO, "liveness.checks")
    settings.CAPTURE_CHALLENGE_STEPS = CLIP.steps
    score = score_of(client, make_tenant, frontal)
    session = when_unsure(band=distance(score) + 0.5)
    taken = session.selfie(frontal)
    assert taken.status_code == 202 and taken.json()["challenge"]["state"] == "pending"
    call_command("prune_checks", "--days", "0", stdout=StringIO())
    assert not LivenessCheck.objects.filter(tenant=session.tenant).exists()
    assert not CaptureSession.objects.filter(pk=session.id).exists()
    poll = session.quality(jpeg(next(frames(CLIP.name)).image))
    assert (poll.status_code, poll.json()) == (404, UNKNOWN_SESSION)
    (held_line,) = check_lines(caplog, session)
    assert held_line["request_id"] == taken["X-Request-ID"] != ""
    assert units(session) == 1


def assert_decided_not_live(
    session: Session, score: float, before: dict[tuple[str, str], float]
) -> None:
    """A held selfie decided by its failed challenge: done, not live with its own score, its
    record not live, one unit, one spoof verdict by the challenge, nothing more to retry."""
    read = session.read()
    assert (read["state"], read["challenge"]) == ("done", "failed")
    assert read["liveness_result"] == {"is_live": 0, "liveness_score": score}
    assert record_of(session).is_live is False
    assert units(session) == 1
    assert counted(before, session) == {("unsure", ""): 1, ("spoof", "challenge"): 1}
    assert session.restart().json()["state"] == "done"  # 409: nothing more to decide


def test_an_unsure_selfie_is_not_live_once_the_challenge_failed_with_no_try_left(
    when_unsure: Any,
    client: Client,
    make_tenant: Any,
    frontal: str,
    clock: Clock,  # noqa: F811
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "liveness.checks")
    settings.CAPTURE_CHALLENGE_TRIES = 2
    score = score_of(client, make_tenant, frontal)
    session = when_unsure(band=distance(score) + 0.5)
    before = verdicts(session)
    held(session, frontal)
    still = Clip("mounish_face.mp4", ())
    first = session.play(still, clock)[-1]
    assert (first["state"], first["tries_left"]) == ("failed", 1)
    assert session.read()["state"] == "open"  # a try is left: not decided yet
    assert session.restart().status_code == 200
    last = session.play(still, clock)[-1]
    assert (last["state"], last["tries_left"]) == ("failed", 0)
    assert session.read()["challenge_code"] in headturn.FAIL_CODES
    assert_decided_not_live(session, score, before)
    assert_logged(caplog, session, False)


def test_a_head_turn_session_is_unchanged_by_the_band(
    make_tenant: Any, client: Client, frontal: str
) -> None:
    """The band applies to when_unsure only: a none tenant's selfie in it is done at once."""
    score = score_of(client, make_tenant, frontal)
    tenant, secret = make_tenant("plain", challenge_band=distance(score) + 0.5)
    session = Session(client, tenant, secret)
    assert session.selfie(frontal).status_code == 202
    assert session.read()["state"] == "done"
    assert CaptureSession.objects.get(pk=session.id).challenge == ""


def test_the_admin_validates_the_band_and_audits_it(db: None, admin_client: Client) -> None:
    tenant = Tenant.objects.create(name="Banded")
    assert tenant.challenge_band == DEFAULT_CHALLENGE_BAND
    url = f"/admin/accounts/tenant/{tenant.pk}/change/"
    form = {"name": "Banded", "is_active": "on", "threshold": "0.5", "profile": "fast"}
    form |= {"crop_policy": "judge", "challenge": "when_unsure", **INLINE_MANAGEMENT}
    for bad, error in (("-0.25", "greater than or equal to 0"), ("10.5", "less than or equal")):
        page = admin_client.post(url, {**form, "challenge_band": bad})
        assert page.status_code == 200  # the form again, with the error
        assert error in page.content.decode()
    tenant.refresh_from_db()
    assert (tenant.challenge, tenant.challenge_band) == ("none", DEFAULT_CHALLENGE_BAND)
    assert admin_client.post(url, {**form, "challenge_band": "1.5"}).status_code == 302
    tenant.refresh_from_db()
    assert (tenant.challenge, tenant.challenge_band) == ("when_unsure", 1.5)
    entry = LogEntry.objects.filter(object_id=str(tenant.pk)).get()
    assert "challenge_band 0.75 → 1.5" in entry.get_change_message()


def test_create_tenant_sets_the_band_within_its_range(db: None) -> None:
    call_command("create_tenant", "Banded", "--challenge", "when_unsure", stdout=StringIO())
    assert Tenant.objects.get(name="Banded").challenge_band == DEFAULT_CHALLENGE_BAND
    argv = ["--challenge", "when_unsure", "--challenge-band", "1.25"]
    call_command("create_tenant", "Wide", *argv, stdout=StringIO())
    assert Tenant.objects.get(name="Wide").challenge_band == 1.25
    for bad in ("-1", "10.5", "nan"):
        with pytest.raises(CommandError, match="challenge.band"):
            call_command("create_tenant", f"Bad{bad}", "--challenge-band", bad, stdout=StringIO())
    assert not Tenant.objects.filter(name__startswith="Bad").exists()


def test_a_session_that_passed_its_head_turns_is_not_held_again(
    make_tenant: Any,
    client: Client,
    frontal: str,
    clock: Clock,  # noqa: F811
    settings: Any,
) -> None:
    """A head_turn tenant switched to when_unsure while its session runs: the session has
    passed its head turns, then its selfie in the band was held for a second challenge (its
    tries counting the first ones: with none left, no verdict before the session expired, its
    unit spent). Its challenge is decided: the selfie is done at once."""
    settings.CAPTURE_CHALLENGE_STEPS = CLIP.steps
    score = score_of(client, make_tenant, frontal)
    tenant, secret = make_tenant("switched", challenge="head_turn")
    session = Session(client, tenant, secret)
    assert session.play(CLIP, clock)[-1]["state"] == "passed"
    Tenant.objects.filter(pk=tenant.pk).update(
        challenge="when_unsure", challenge_band=distance(score) + 0.5
    )
    taken = session.selfie(frontal)
    assert taken.status_code == 202, taken.content
    assert "challenge" not in taken.json()
    read = session.read()
    assert (read["state"], read["challenge"]) == ("done", "passed")
    assert read["liveness_result"] == {"is_live": int(score >= 0.5), "liveness_score": score}
    assert record_of(session).is_live is (score >= 0.5)


SWITCHES = {
    # (the tenant's rule when the session opens, its rule at the selfie, the selfie held?)
    "when_unsure, then head_turn: held": (("when_unsure", 0.5), ("head_turn", 0.5), True),
    "when_unsure, then its band narrowed: held": (("when_unsure", 0.5), ("when_unsure", 0), True),
    "when_unsure, then none: held": (("when_unsure", 0.5), ("none", 0.5), True),
    "none, then when_unsure: done": (("none", 0.5), ("when_unsure", 0.5), False),
}


@pytest.mark.parametrize("opened, switched, kept", SWITCHES.values(), ids=SWITCHES.keys())
def test_a_session_is_judged_by_the_rule_it_was_opened_under(
    make_tenant: Any,
    client: Client,
    frontal: str,
    opened: tuple[str, float],
    switched: tuple[str, float],
    kept: bool,
) -> None:
    """The tenant's challenge or band changed while its session runs: the selfie is judged by
    the rule the session was opened under (a when_unsure session holds a selfie in the band it
    was opened with, where read at the selfie it was decided by its score alone, no challenge
    ever asked); the next session takes the new rule. Bands: logits beyond the score's."""
    score = score_of(client, make_tenant, frontal)
    mode, extra = opened
    tenant, secret = make_tenant("switched", challenge=mode, challenge_band=distance(score) + extra)
    session = Session(client, tenant, secret)
    mode, extra = switched
    band = distance(score) + extra if extra else 0.0  # 0: no score within it
    Tenant.objects.filter(pk=tenant.pk).update(challenge=mode, challenge_band=band)
    if kept:
        held(session, frontal)
        stored = session.stored()
        assert (stored.challenge_mode, stored.challenge_band) == (
            "when_unsure",
            distance(score) + 0.5,
        )
    else:
        assert session.selfie(frontal).status_code == 202
        read = session.read()
        assert (read["state"], read["challenge"]) == ("done", "not_required")
        assert read["liveness_result"] == {"is_live": int(score >= 0.5), "liveness_score": score}
    fresh = Session(client, tenant, secret).stored()
    first_state = "pending" if mode == "head_turn" else ""
    assert (fresh.challenge_mode, fresh.challenge) == (mode, first_state)


NEXT_CALLS = {
    # the call and its status (the retry's 409: the session decided, nothing to retry)
    "the retry": (lambda session, image: session.restart(), 409),
    "a quality frame": (lambda session, image: session.quality(image), 200),
    "the backend's read": (
        lambda session, image: verdict(session.client, session.id, session.secret),
        200,
    ),
}


@pytest.mark.parametrize("next_call", NEXT_CALLS.values(), ids=NEXT_CALLS.keys())
def test_a_held_selfie_is_not_live_once_a_lowered_limit_leaves_no_try(
    when_unsure: Any,
    client: Client,
    make_tenant: Any,
    frontal: str,
    clock: Clock,  # noqa: F811
    settings: Any,
    next_call: Any,
) -> None:
    """CAPTURE_CHALLENGE_TRIES lowered after a held selfie's challenge failed with tries left:
    whatever call comes next decides it not live (not a refused retry, the session open and
    undecided until it expires, its unit spent)."""
    settings.CAPTURE_CHALLENGE_TRIES = 3
    score = score_of(client, make_tenant, frontal)
    session = when_unsure(band=distance(score) + 0.5)
    before = verdicts(session)
    held(session, frontal)
    still = Clip("mounish_face.mp4", ())
    first = session.play(still, clock)[-1]
    assert (first["state"], first["tries_left"]) == ("failed", 2)
    settings.CAPTURE_CHALLENGE_TRIES = 1
    call, status = next_call
    answer = call(session, jpeg(next(frames(still.name)).image))
    assert answer.status_code == status, answer.content
    assert_decided_not_live(session, score, before)


@pytest.mark.parametrize("threshold", [1.0, 0.0])
def test_a_threshold_at_either_end_holds_no_selfie(
    make_tenant: Any, client: Client, frontal: str, threshold: float
) -> None:
    """The band lies about the threshold's logit, infinite at 0 and 1: no score is within any
    band of it, and the session's verdict is /liveness's (1.0: nothing live; 0.0: all). With
    logits clipped at 1e-3, a selfie scored 0.9998 at threshold 1.0 would be held (both at 6.9
    logits) and made live by its challenge, while /liveness says is_live 0 for it."""
    tenant, secret = make_tenant(
        "end", threshold=threshold, challenge="when_unsure", challenge_band=MAX_CHALLENGE_BAND
    )
    checked = post(client, "/liveness", {"hash_id": secret, "selfie_image": frontal})
    assert checked.status_code == 201, checked.content
    result = checked.json()["liveness_result"]
    assert result["is_live"] == int(threshold == 0.0)
    session = Session(client, tenant, secret)
    taken = session.selfie(frontal)
    assert taken.status_code == 202, taken.content
    assert "challenge" not in taken.json()
    read = session.read()
    assert (read["state"], read["challenge"]) == ("done", "not_required")
    assert read["liveness_result"] == result
