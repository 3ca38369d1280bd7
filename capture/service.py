"""Capture sessions: open, quality (gates only), selfie (the whole check, once), verdict."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from accounts.models import HashId, Tenant
from capture import challenge
from capture.models import (
    NOT_REQUIRED,
    PASSED,
    PENDING,
    CaptureSession,
    new_token,
    token_digest,
)
from guard import throttle
from guard.throttle import Window
from liveness import answers
from liveness.answers import Judged, Rejected, Rejection
from liveness.checks import (
    Caller,
    Images,
    decode_frame,
    engine_or_rejected,
    image_bytes,
    judge_and_record,
    read_images,
)
from ml import quality
from ml.decode import Frame, Limits
from ml.engine import Gates
from ml.yunet import scaled

MAX_FRAMES = 3
QUALITY_SCOPE = "session-quality"
SELFIE_SCOPE = "session-selfie"
# What the component sends (capture.js): quality frames 480 px wide (0.17 MP landscape, 0.41 MP
# portrait) and selfies at the camera's size (it asks for 1280x720; 4K UHD and a 12 MP phone
# still fit), as a browser's baseline JPEG (one scan). Each further JPEG scan is a pass over
# the whole image: a 69 kB 64-scan file declaring 8000x5000 took 218 ms to decode for a
# quality call whose own 480 px frame takes 1.4 ms; 4 scans still allow a non-interleaved
# baseline file (one scan per component).
# A bound on pixels, named as a size: a portrait of the same area passes too.
QUALITY_SIZE = (1024, 1024)
SELFIE_SIZE = (4096, 3072)
QUALITY_LIMITS = Limits(max_pixels=QUALITY_SIZE[0] * QUALITY_SIZE[1], max_jpeg_scans=4)
SELFIE_LIMITS = Limits(max_pixels=SELFIE_SIZE[0] * SELFIE_SIZE[1], max_jpeg_scans=4)


@dataclass(frozen=True)
class Opened:
    session: CaptureSession
    token: str  # exists only here: the database keeps its digest


def open_session(tenant: Tenant, credential: HashId) -> Opened:
    """A new session of ``tenant``, ended early if ``credential`` (the hash_id that opened
    it) is revoked."""
    token = new_token()
    expires_at = timezone.now() + timedelta(seconds=settings.SESSION_TTL_S)
    try:
        session = CaptureSession.objects.create(
            tenant=tenant,
            credential=credential,
            token_digest=token_digest(token),
            expires_at=expires_at,
            **challenge.rule_of(tenant),
        )
    except IntegrityError:
        # The hash_id (or its tenant) deleted since it was authenticated: the session's
        # foreign key fails at COMMIT, which is no database outage (503) but a credential gone.
        if HashId.objects.filter(pk=credential.pk).exists():
            raise
        raise Rejected(Rejection("invalid_credentials")) from None
    return Opened(session, token)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def conflict(session: CaptureSession) -> Rejected:
    code = "session_done" if session.state == CaptureSession.DONE else "session_busy"
    return Rejected(Rejection(code, {"state": session.state}))


def require_open(session: CaptureSession) -> None:
    if session.state != CaptureSession.OPEN:
        raise conflict(session)


# --- each token call's own rate (the tenant's rate and quota: capture.views) -------------


def _over(code: str, scope: str, session: CaptureSession, limit: int, window: Window) -> None:
    """Count the call in the session's window of ``scope``; a scope's past windows are deleted
    as new ones start. Kept until prune_checks' 24 h, long after their session has expired or
    been pruned, they would grow by about 1.6 rows per session walk (690 after a 240 s
    sessions soak, against 85 to 145 throughout it when deleted this way)."""
    if throttle.hit(scope, str(session.pk), window, expiring=True) > limit:
        raise Rejected(Rejection(code, {"limit": limit}, retry_after=window.retry_after()))


def within_quality_rate(session: CaptureSession) -> None:
    limit = settings.SESSION_QUALITY_PER_S
    _over("quality_rate_limited", QUALITY_SCOPE, session, limit, Window.current(1))


def within_selfie_rate(session: CaptureSession) -> None:
    """A refused selfie takes no quota (as /liveness's 422), so its retries are bounded here:
    the component retries after a refusal only once the gates pass again (over a second)."""
    limit = settings.SESSION_SELFIE_PER_MIN
    _over("selfie_rate_limited", SELFIE_SCOPE, session, limit, Window.current(60))


def within_budget(session: CaptureSession) -> None:
    """Count the call against the session's SESSION_CALL_BUDGET, every token call alike. This,
    not the tenant's rate limit, bounds a token: counted against a tenant's 120 a minute, one
    token's 8 calls a second (refused ones count too) would keep every other user of the
    tenant refused for as long as the token lives. The tenant's rate still bounds what its
    backend can make us do: each session is opened by a counted POST /sessions. A call over
    the budget is not counted; it is told to wait until the session expires (Retry-After):
    the component ends the capture on its code, the session has no call left."""
    limit = settings.SESSION_CALL_BUDGET
    admitted = CaptureSession.objects.filter(pk=session.pk, token_calls__lt=limit).update(
        token_calls=F("token_calls") + 1
    )
    if admitted:
        return
    if not CaptureSession.objects.filter(pk=session.pk).exists():
        raise Rejected(Rejection("unknown_session"))  # deleted since its token was read
    wait = math.ceil((session.expires_at - timezone.now()).total_seconds())
    raise Rejected(Rejection("session_calls_spent", {"limit": limit}, retry_after=max(1, wait)))


# --- quality -----------------------------------------------------------------------------


def gate_report(frame: Frame, gates: Gates) -> dict[str, object]:
    """Every quality gate on the detected faces (``gates``, crop policy ``refuse``: the
    component aims at a full frame), no classifier: the body of POST /sessions/{id}/quality.
    Sizes and the box are in the frame's pixels: the gates measured a large JPEG's reduced
    decode (``frame.scale`` times smaller: the one decode judged, finer when the first left the
    face too small), which a client drawing on its frame never sees."""
    report: dict[str, object] = {
        "width": frame.width,
        "height": frame.height,
        "face": None,
        "capture": None,
    }
    if gates.face is not None:
        face = gates.face
        x, y, w, h = (round(float(v) * frame.scale, 1) for v in face.box)
        report["face"] = {"x": x, "y": y, "w": w, "h": h, "score": round(float(face.score), 3)}
        report["capture"] = gates.capture
    failures = [{"code": code, "error": quality.REFUSALS[code]} for code in gates.failures]
    first = failures[0] if failures else {"code": None, "error": None}
    return {"passed": not failures, **first, "failures": failures, **report}


def asked_more_time(payload: dict[str, object]) -> bool:
    """The component's "More time" button: ``more_time`` true, false or absent. Any other value
    is refused (400), whatever the session: read as false, a client's "true" or 1 was silently
    no more time, its step failing on time while the person had asked for more."""
    more_time = payload.get("more_time", False)
    if not isinstance(more_time, bool):
        raise Rejected(Rejection("more_time_invalid"))
    return more_time


def check_quality(
    session: CaptureSession, payload: dict[str, object], request_id: str
) -> dict[str, object]:
    """Called once the session is open and within every rate and the quota (capture.views).
    A session with a challenge feeds the frame's face and the gates it failed to it (the
    judge takes its reference only from a frame that passes them all) and answers its state."""
    more_time = asked_more_time(payload)
    data = image_bytes(payload.get("selfie_image"))
    engine = engine_or_rejected()
    decoded = decode_frame(engine, data, QUALITY_LIMITS)
    frame, faces, gates = engine.gated(decoded, "refuse")  # decoded again finer if need be
    report = gate_report(frame, gates)
    if session.challenge != NOT_REQUIRED:
        ratio = engine.thresholds.max_other_face_ratio
        # in the first decode's pixels, as every frame of this size: the judge compares a
        # face's size and place from frame to frame
        faces = [scaled(face, frame.scale / decoded.scale) for face in faces]
        report["challenge"] = challenge.observe(session, faces, ratio, gates.failures, more_time)
    return report


def restart_challenge(
    session: CaptureSession, payload: dict[str, object], request_id: str
) -> dict[str, object]:
    """POST /sessions/{id}/challenge: a new challenge with new steps drawn by the server (the
    body is ignored: nothing the browser sends chooses them)."""
    return {"challenge": challenge.start(session)}


# --- selfie ------------------------------------------------------------------------------


def frame_values(payload: dict[str, object]) -> list[object]:
    """One ``selfie_image`` or a burst of up to three ``frames``, each a string: a number or
    null in ``frames`` is refused as ``frames_invalid``, not with the sentences of
    ``selfie_image``, a field not sent."""
    frames = payload.get("frames")
    if frames is None:
        return [payload.get("selfie_image")]
    if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES:
        raise Rejected(Rejection("frames_invalid"))
    if not all(isinstance(frame, str) for frame in frames):
        raise Rejected(Rejection("frames_invalid"))
    return frames


def claim(session: CaptureSession) -> bool:
    """open -> processing, by one conditional UPDATE: of concurrent selfies exactly one wins
    (SQLite serialises writers; PostgreSQL re-checks the row's state after its lock)."""
    claimed = CaptureSession.objects.filter(
        pk=session.pk,
        state=CaptureSession.OPEN,
        expires_at__gt=timezone.now(),
        challenge__in=(NOT_REQUIRED, PASSED),
        score__isnull=True,  # not a held selfie's session: one verdict per session
    ).update(state=CaptureSession.PROCESSING)
    return claimed == 1


def claim_refused(session: CaptureSession) -> Rejected:
    """Why ``claim`` found the session not open, as it stands now: its challenge, its lifetime
    ended since the token was checked (while the frames were decoded), or another selfie's
    claim or verdict (open again if that one reached no verdict meanwhile: busy as before)."""
    try:
        session.refresh_from_db()
    except CaptureSession.DoesNotExist:
        return gone()
    require_no_selfie(session)
    challenge.require_passed(session)
    if session.state == CaptureSession.OPEN and session.expires_at <= timezone.now():
        return Rejected(Rejection("token_expired"))
    return conflict(session)


def release(session: CaptureSession, refused_code: str = "") -> None:
    """processing -> open: no verdict was reached (gate refused, quota, error)."""
    fields: dict[str, object] = {"state": CaptureSession.OPEN}
    if refused_code:
        fields["refused_code"] = refused_code
    CaptureSession.objects.filter(pk=session.pk, state=CaptureSession.PROCESSING).update(**fields)


def finish(session: CaptureSession, judged: Judged, check_id: int, request_id: str) -> None:
    """The check's ``then``, in its transaction: processing -> done with the verdict; or, for
    a selfie ``unsure`` holds, processing -> open with its score kept and the challenge
    pending (capture.challenge.settle gives the verdict)."""
    kept: dict[str, object] = {
        "score": judged.score,
        "capture": judged.capture,
        "frames": judged.frames,
        "refused_code": "",
        "selfie_check_id": check_id,
        "selfie_request_id": request_id,
    }
    if unsure(session, judged):
        kept |= {"state": CaptureSession.OPEN, "challenge": PENDING}
    else:
        kept |= {"state": CaptureSession.DONE, "is_live": judged.is_live}
        kept["finished_at"] = timezone.now()
    updated = CaptureSession.objects.filter(pk=session.pk, state=CaptureSession.PROCESSING).update(
        **kept
    )
    if updated != 1:
        raise lost_claim(session)  # rolls the unit and the record back


def gone() -> Rejected:
    """A session deleted while its selfie was read or judged (``prune_sessions``, an admin):
    404 as an unknown session's, not a 500."""
    return Rejected(Rejection("unknown_session"))


def lost_claim(session: CaptureSession) -> Rejected:
    """Why ``finish`` found its claim gone: the session deleted meanwhile (404), or its state
    changed (409, as it stands now)."""
    found = CaptureSession.objects.filter(pk=session.pk).first()
    return gone() if found is None else conflict(found)


def ended(session: CaptureSession) -> Rejected:
    """Why a selfie's unit was refused 401 (``judge_and_record``'s invalid_credentials,
    uncounted): its session deleted with its tenant (404, as ``gone``), or since its token was
    checked the tenant deactivated or the hash_id that opened it revoked or deleted: 401
    token_invalid, as capture.tokens answers the session's token from then on (the session
    stays open, its token refused)."""
    if not CaptureSession.objects.filter(pk=session.pk).exists():
        return gone()
    return Rejected(Rejection("token_invalid"))


def caller_of(session: CaptureSession) -> Caller:
    """The selfie's unit asks the hash_id that opened the session to be still unrevoked: a
    revoked or deleted one ends its open sessions (capture.tokens.credential_active, which
    refuses a session with none: "" would have its unit refused too). A token call's 401 is
    not counted (docs/operator/admin.md, refusal counts)."""
    credential = session.credential
    return Caller("" if credential is None else credential.digest, counts_401=False)


def unsure(session: CaptureSession, judged: Judged) -> bool:
    """Whether the session's challenge decides this selfie (opened under when_unsure, the score
    within the band it was opened with), never once a challenge was asked: otherwise a head_turn
    tenant switched to when_unsure while its session runs would hold the selfie after its head
    turns had passed, for a second challenge whose tries count the first ones (none left: no
    verdict, its unit spent)."""
    return session.challenge == NOT_REQUIRED and session.unsure(judged.score)


def judge_claimed(session: CaptureSession, images: Images, request_id: str) -> bool:
    """The check on a claimed session; the unit, the record and the session's verdict (or its
    held selfie) are written in one transaction. With no verdict the session is open again
    (with the gate's code after a refusal) and the rejection raised. Whether the selfie is
    held (``finish``'s choice)."""
    try:
        outcome = judge_and_record(
            session.tenant,
            images,
            request_id,
            caller_of(session),
            then=lambda judged, check_id: finish(session, judged, check_id, request_id),
            hold=lambda judged: unsure(session, judged),
        )
    except BaseException:
        release(session)
        raise
    if isinstance(outcome, Rejection):
        release(session, outcome.code if outcome.code in quality.REFUSALS else "")
        if outcome.code == "invalid_credentials":
            raise ended(session)
        raise Rejected(outcome)
    return unsure(session, outcome)


def require_no_selfie(session: CaptureSession) -> None:
    """A held selfie's session takes no other: its challenge decides (409 selfie_held)."""
    if session.held:
        raise Rejected(Rejection("selfie_held"))


def take_selfie(
    session: CaptureSession, payload: dict[str, object], request_id: str
) -> dict[str, object]:
    """The 202's body once the capture is judged (the verdict goes to the backend only).
    Called once the session is open and within every rate and the quota (capture.views);
    refused before any image is decoded while the session's challenge has not passed, or its
    selfie is held. A selfie it holds says so: its ``challenge`` is pending."""
    require_no_selfie(session)
    challenge.require_passed(session)
    images = read_images(session.tenant, frame_values(payload), SELFIE_LIMITS)
    if not claim(session):
        raise claim_refused(session)
    held = judge_claimed(session, images, request_id)
    body: dict[str, object] = {"session_id": str(session.pk), "state": "received"}
    body["frames"] = len(images.frames)
    if not held:  # done: nothing of the session to read again
        return body
    try:
        session.refresh_from_db()
    except CaptureSession.DoesNotExist:  # deleted once judged: the check and its unit stand
        return body
    body["challenge"] = challenge.answer_of(session)
    return body


# --- verdict (backend) -------------------------------------------------------------------


# A selfie claimed before its session expired is judged past the expiry, for as long as its
# worker lives: gunicorn kills a worker after GUNICORN_TIMEOUT (60 s by default; a check
# takes 0.1-0.3 s). Only a session still processing this long after its expiry lost its
# worker.
PROCESSING_GRACE = timedelta(seconds=120)


def state_of(session: CaptureSession) -> str:
    """``expired`` is final: an open session past its expiry can no longer change (a selfie
    claims, a challenge frame writes, only before it); one whose selfie was claimed in time
    reads ``processing`` until that selfie's verdict. It read ``expired`` there, then ``done``
    with a verdict and its unit, to a backend that had stopped polling at ``expired``."""
    now = timezone.now()
    if session.state == CaptureSession.OPEN and session.expires_at <= now:
        return "expired"
    if session.state == CaptureSession.PROCESSING and session.expires_at + PROCESSING_GRACE <= now:
        return "expired"  # its worker was killed: no verdict will come
    return session.state


def describe(session: CaptureSession) -> dict[str, object]:
    """The body of GET /sessions/{id}: the verdict in /liveness's shape once there is one (a
    held selfie whose failed challenge has no try left is decided first)."""
    challenge.decide_spent(session)
    done = session.state == CaptureSession.DONE
    body: dict[str, object] = {
        "session_id": str(session.pk),
        "state": state_of(session),
        "expires_at": iso(session.expires_at),
        "capture": session.capture or None,
        "frames": session.frames,
        "liveness_result": None,
        "refused": None,
    }
    if done:
        score = answers.answered_score(session.score or 0.0)
        body["liveness_result"] = {"is_live": int(bool(session.is_live)), "liveness_score": score}
        body["message"] = answers.SUCCESS
    elif session.refused_code:
        code = session.refused_code
        body["refused"] = {"code": code, "error": quality.REFUSALS.get(code, code)}
    body.update(challenge.summary(session))
    return body
