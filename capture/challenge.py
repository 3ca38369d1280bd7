"""The head-turn challenge of a head_turn tenant's capture session: the server draws the steps
(``secrets``), reveals one at a time, times them by its own clock and feeds ml.headturn's judge
with the face of each quality frame. Only the judge's state is stored, never a frame. The
selfie is taken once the challenge passed (``require_passed``). A when_unsure tenant's session
runs it after a selfie its band held; ``settle`` then gives that selfie's verdict."""

import functools
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import F, Func, JSONField, Q
from django.utils import timezone

from accounts.models import HEAD_TURN, WHEN_UNSURE, Tenant
from capture.models import FAILED, NOT_REQUIRED, PASSED, PENDING, RUNNING, CaptureSession
from liveness.answers import Rejected, Rejection
from liveness.checks import Settled, settle_held
from ml import headturn
from ml.yunet import Face

# The server's clock for the judge's timings (seconds). Tests of clips replace it with the
# clip's own timestamps, so a frame's time is the time it was filmed, whatever the load.
clock: Callable[[], float] = time.time
_RANDOM = secrets.SystemRandom()
# GET /sessions/{id}'s "challenge" for each stored state.
SUMMARY = {
    NOT_REQUIRED: "not_required",
    PENDING: "pending",
    RUNNING: "pending",
    PASSED: "passed",
    FAILED: "failed",
}


def initial_state(mode: str) -> str:
    """A new session's challenge state: pending under head_turn, else none required (a
    when_unsure session asks for it only once its selfie is held)."""
    return PENDING if mode == HEAD_TURN else NOT_REQUIRED


def rule_of(tenant: Tenant) -> dict[str, object]:
    """A new session's challenge fields: the tenant's rule now, kept for the session's life
    (its mode, a when_unsure band, the initial state)."""
    band = tenant.challenge_band if tenant.challenge == WHEN_UNSURE else None
    return {
        "challenge_mode": tenant.challenge,
        "challenge_band": band,
        "challenge": initial_state(tenant.challenge),
    }


def draw() -> tuple[str, ...]:
    """The steps of a new challenge: random (the OS's CSPRNG), unless the deployment fixed them
    for tests and demos (CAPTURE_CHALLENGE_STEPS; nothing a request says can)."""
    return tuple(settings.CAPTURE_CHALLENGE_STEPS) or tuple(headturn.draw_steps(_RANDOM))


def public(progress: headturn.Progress) -> dict[str, object]:
    """What the browser sees: the current step only, never the ones to come."""
    shown: dict[str, object] = {
        "instruction": progress.instruction,
        "step": progress.step,
        "steps": progress.steps,
        "done": progress.done,
        "state": progress.state,
    }
    if progress.state == FAILED and progress.code:
        shown["code"] = progress.code
        shown["error"] = headturn.FAIL_CODES.get(progress.code, progress.code)
    return shown


def _stored(session: CaptureSession, key: str) -> Any:
    """``key`` of the session's stored challenge (None if missing, or the column damaged)."""
    stored = session.challenge_judge
    return stored.get(key) if isinstance(stored, dict) else None


def judge_of(session: CaptureSession) -> headturn.HeadTurnJudge:
    """The session's judge as stored. A state this judge cannot continue (stored by another
    version of the service, or damaged) is refused: the session needs a new challenge."""
    try:
        return headturn.HeadTurnJudge.from_state(_stored(session, "judge"))
    except headturn.StateError:
        raise Rejected(Rejection("challenge_unreadable")) from None


def answer_of(session: CaptureSession) -> dict[str, object]:
    """The stored challenge as the quality and challenge calls answer it, with the tries left."""
    progress = _stored(session, "progress")
    shown = dict(progress) if isinstance(progress, dict) and progress else {}
    shown = shown or {"state": session.challenge}
    shown["tries_left"] = max(settings.CAPTURE_CHALLENGE_TRIES - session.challenge_tries, 0)
    shown["extensions_left"] = max(settings.CAPTURE_CHALLENGE_EXTENSIONS - extended(session), 0)
    return shown


def extended(session: CaptureSession) -> int:
    """How often the session's challenges had their time extended (kept across retries)."""
    count = _stored(session, "extensions")
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def _save(session: CaptureSession, **fields: object) -> bool:
    """Write ``fields`` if no other call changed the challenge since ``session`` was read
    and the session has not expired (a frame whose token was checked just before the expiry
    is judged after it: ``expired`` is final). A session deleted meanwhile (an admin, its
    tenant) is 404 as an unknown one, not a 500."""
    updated = CaptureSession.objects.filter(
        pk=session.pk,
        challenge_version=session.challenge_version,
        expires_at__gt=timezone.now(),
    ).update(challenge_version=F("challenge_version") + 1, **fields)
    _read_again(session)
    return updated == 1


def start(session: CaptureSession) -> dict[str, object]:
    """A new challenge with new steps: the first (a session's first quality frame starts it)
    or a retry, at most CAPTURE_CHALLENGE_TRIES per session; never once one has passed."""
    if session.challenge == NOT_REQUIRED:
        raise Rejected(Rejection("challenge_not_required"))
    if session.challenge == PASSED:
        raise Rejected(Rejection("challenge_already_passed"))
    limit = settings.CAPTURE_CHALLENGE_TRIES
    if session.challenge_tries >= limit:
        # Its held selfie decided now, by this call or by a concurrent one (the backend's
        # read decided it between this call's read and its write: answered
        # challenge_tries_exhausted then, as if the session could still be decided).
        decide_spent(session)
        if session.state == CaptureSession.DONE:
            raise Rejected(Rejection("session_done", {"state": session.state}))
        raise Rejected(Rejection("challenge_tries_exhausted", {"limit": limit}))
    judge = headturn.HeadTurnJudge(draw())
    _save(
        session,
        challenge=RUNNING,
        challenge_judge={
            "judge": judge.to_state(),
            "progress": public(judge.progress()),
            "extensions": extended(session),
        },
        challenge_code="",
        challenge_tries=F("challenge_tries") + 1,
    )
    return answer_of(session)  # a concurrent start's, if that one won


def observe(
    session: CaptureSession,
    faces: list[Face],
    max_other_face_ratio: float,
    refused: Sequence[str] = (),
    more_time: bool = False,
) -> dict[str, object]:
    """Feed one quality frame's faces and the quality gates it ``refused`` (their codes) to
    the session's judge, another face counted at the quality gates' ``max_other_face_ratio``;
    the challenge as it stands. ``more_time``: the person asked for it, granted (another
    ``step_s`` to the phase running) up to CAPTURE_CHALLENGE_EXTENSIONS per session."""
    if session.challenge == PENDING:
        start(session)
    if session.challenge != RUNNING:
        decide_spent(session)
        return answer_of(session)
    # Only the main face's box and landmarks, how many faces of about its size were seen, the
    # gates the frame failed and the server's time: all the judge sees.
    seen = headturn.observation(clock(), faces, max_other_face_ratio, refused)
    judge = judge_of(session)
    count = extended(session)
    # Before the frame: the time it gives counts for this frame already. Spent only if the
    # challenge still runs after it: a frame that fails it (face_lost) or passes it used none.
    given = more_time and count < settings.CAPTURE_CHALLENGE_EXTENSIONS and judge.extend()
    progress = judge.observe(seen)
    if given and progress.state == RUNNING:
        count += 1
    # The challenge and a held selfie's verdict are written together or not at all.
    write = functools.partial(_write, session, judge, progress, count)
    settle_held(session.tenant, write)
    if session.state != CaptureSession.DONE and session.expires_at <= timezone.now():
        raise Rejected(Rejection("token_expired"))  # as a GET reads it now: expired
    return answer_of(session)


def _write(
    session: CaptureSession,
    judge: headturn.HeadTurnJudge,
    progress: headturn.Progress,
    extensions: int,
) -> Settled | None:
    """The frame's challenge state, and the held selfie's verdict if it decides one. A frame
    that lost the race to a concurrent poll is dropped (the component polls one frame at a
    time; a second tab on the same token would only lose frames)."""
    decided = progress.state in (PASSED, FAILED)
    saved = _save(
        session,
        challenge=progress.state,
        challenge_judge={
            # Decided, the judge is never fed again: its face goes in this same UPDATE.
            "judge": judge.to_record() if decided else judge.to_state(),
            "progress": public(progress),
            "extensions": extensions,
        },
        challenge_code=(progress.code or "") if progress.state == FAILED else "",
    )
    return settle(session) if saved else None


def decide_spent(session: CaptureSession) -> bool | None:
    """A held selfie whose challenge failed with no try left under CAPTURE_CHALLENGE_TRIES as
    it is now: not live, now. ``settle`` runs when a challenge fails; a limit lowered after
    that left the session undecided until it expired (the retry refused, nothing to poll).
    Called by the retry's refusal, a quality frame and the backend's read. The verdict given."""
    if not (session.held and session.challenge == FAILED):
        return None
    return settle_held(session.tenant, lambda: settle(session))


def settle(session: CaptureSession) -> Settled | None:
    """A held selfie's verdict once its challenge is decided: passed -> live, failed with no
    try left -> not live. The session done with the selfie's own score (``settle_held``'s
    step: its check record says the same verdict in the same transaction), ``session`` as
    the row now is. None if undecided, or decided by another call first (``session`` then
    read again as that call left it)."""
    if not session.held:
        return None
    spent = session.challenge_tries >= settings.CAPTURE_CHALLENGE_TRIES
    if session.challenge == PASSED:
        live = True
    elif session.challenge == FAILED and spent:
        live = False
    else:
        return None
    decided = {"state": CaptureSession.DONE, "is_live": live, "finished_at": timezone.now()}
    done = CaptureSession.objects.filter(
        pk=session.pk,
        state=CaptureSession.OPEN,
        challenge_version=session.challenge_version,
        expires_at__gt=timezone.now(),  # a GET may have read it expired: that is final
    ).update(**decided)
    if done != 1:
        _read_again(session)  # another call decided it first: as that one left it
        return None
    # No read back: every other write to an open held session changes its challenge_version
    # (_save) or its state (this one), so the row matched is ``session`` as read, and the
    # UPDATE keeps it locked (SQLite: the write lock) until the caller's transaction ends.
    for name, value in decided.items():
        setattr(session, name, value)
    return Settled(
        session.selfie_check_id, live, session.selfie_request_id, session.score, session.capture
    )


class JudgeWithoutFace(Func):
    """``challenge_judge`` with its judge's face (``headturn.FACE_FIELDS``) taken out, in SQL:
    SQLite's ``json_remove``, PostgreSQL's jsonb ``-`` (the only two databases the service
    runs on); one UPDATE of every row, none read into Python."""

    output_field = JSONField()

    def __init__(self) -> None:
        super().__init__(F("challenge_judge"))

    def as_sqlite(
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        column, params = compiler.compile(self.source_expressions[0])
        paths = ", ".join(["%s"] * len(headturn.FACE_FIELDS))
        keys = (f"$.judge.{key}" for key in headturn.FACE_FIELDS)
        return f"json_remove({column}, {paths})", (*params, *keys)

    def as_postgresql(
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"jsonb_set({column}, '{{judge}}', ({column} -> 'judge') - %s::text[])"
        return sql, (*params, *params, list(headturn.FACE_FIELDS))


def with_face() -> Q:
    """The sessions whose stored judge still holds any of the face."""
    return Q(challenge_judge__judge__has_any_keys=list(headturn.FACE_FIELDS))


def forget_expired_faces() -> int:
    """Take the face out of the judges of the sessions past their expiry (a challenge left
    running: nothing can feed it again), one UPDATE; a decided challenge dropped it as it
    was decided (``_write``). Moves ``challenge_version`` on, so that a poll read before
    this cannot write the face back. How many sessions it changed."""
    expired = CaptureSession.objects.filter(with_face(), expires_at__lte=timezone.now())
    return expired.update(
        challenge_judge=JudgeWithoutFace(), challenge_version=F("challenge_version") + 1
    )


def _read_again(session: CaptureSession) -> None:
    try:
        session.refresh_from_db()
    except CaptureSession.DoesNotExist:
        raise Rejected(Rejection("unknown_session")) from None


def require_passed(session: CaptureSession) -> None:
    """A selfie is judged once the session's challenge, if it has one, has passed."""
    if session.challenge in (NOT_REQUIRED, PASSED):
        return
    if session.challenge == FAILED:
        limit = settings.CAPTURE_CHALLENGE_TRIES
        if session.challenge_tries >= limit:  # no retry to point to: a new session
            raise Rejected(Rejection("challenge_tries_exhausted", {"limit": limit}))
        raise Rejected(Rejection("challenge_failed", {"reason": session.challenge_code}))
    raise Rejected(Rejection("challenge_not_passed"))


def summary(session: CaptureSession) -> dict[str, object]:
    """GET /sessions/{id}'s challenge fields."""
    fields: dict[str, object] = {"challenge": SUMMARY[session.challenge]}
    if session.challenge == FAILED:
        fields["challenge_code"] = session.challenge_code
        tries = settings.CAPTURE_CHALLENGE_TRIES - session.challenge_tries
        fields["challenge_tries_left"] = max(tries, 0)  # 0: only a new session can pass
    return fields
