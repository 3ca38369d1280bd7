"""Capture sessions: open, quality (gates only), selfie (the whole check, once), verdict."""

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone

from accounts.models import HashId, Tenant
from capture.errors import Answered, too_many
from capture.models import CaptureSession, new_token, token_digest
from guard import counters
from guard.counters import Window
from liveness import responses
from liveness.outcomes import Rejected, Rejection
from liveness.runtime import EngineUnavailable, get_engine
from liveness.service import REASONS, image_bytes, record
from ml import quality
from ml.decode import Limits
from ml.engine import LivenessEngine, Verdict
from ml.errors import FaceRefused, ImageError
from ml.profiles import sigmoid
from telemetry import metrics

log = logging.getLogger(__name__)
MAX_FRAMES = 3
QUALITY_SCOPE = "session-quality"
SELFIE_SCOPE = "session-selfie"
# What the component sends (capture.js): quality frames 480 px wide (0.17 MP landscape, 0.41 MP
# portrait) and selfies at the camera's size (it asks for 1280x720; 4K UHD and a 12 MP phone
# still fit), as a browser's baseline JPEG (one scan). Each further JPEG scan is a pass over
# the whole image: a 69 kB 64-scan file declaring 8000x5000 took 218 ms to decode for a
# quality call whose own 480 px frame takes 1.4 ms; 4 scans still allow a non-interleaved
# baseline file (one scan per component).
QUALITY_LIMITS = Limits(max_pixels=1024 * 1024, max_jpeg_scans=4)
SELFIE_LIMITS = Limits(max_pixels=4096 * 3072, max_jpeg_scans=4)
ALREADY_DONE = "This session already has its verdict; start a new session."
IN_PROGRESS = "A selfie of this session is already being judged."
FRAMES_INVALID = "frames must be a list of 1 to 3 base64-encoded images."


@dataclass(frozen=True)
class Opened:
    session: CaptureSession
    token: str  # exists only here: the database keeps its digest


def open_session(tenant: Tenant, credential: HashId) -> Opened:
    """A new session of ``tenant``, ended early if ``credential`` (the hash_id that opened
    it) is revoked."""
    token = new_token()
    expires_at = timezone.now() + timedelta(seconds=settings.SESSION_TTL_S)
    session = CaptureSession.objects.create(
        tenant=tenant,
        credential=credential,
        token_digest=token_digest(token),
        expires_at=expires_at,
    )
    return Opened(session, token)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def conflict(session: CaptureSession) -> Answered:
    message = ALREADY_DONE if session.state == CaptureSession.DONE else IN_PROGRESS
    return Answered(JsonResponse({"error": message, "state": session.state}, status=409))


def require_open(session: CaptureSession) -> None:
    if session.state != CaptureSession.OPEN:
        raise conflict(session)


def engine_or_503() -> LivenessEngine:
    try:
        return get_engine()
    except EngineUnavailable as exc:
        log.error("engine unavailable: %s", exc)
        raise Rejected(Rejection("not_ready")) from exc


def decode(engine: LivenessEngine, data: bytes, limits: Limits) -> np.ndarray:
    try:
        return engine.decode(data, limits)
    except ImageError as exc:
        raise Rejected(Rejection("image_invalid")) from exc


# --- each token call's own rate (the tenant's rate and quota: capture.views) -------------


def quality_rate_exceeded(session: CaptureSession) -> Answered | None:
    limit = settings.SESSION_QUALITY_PER_S
    window = Window.current(1)
    if counters.hit(QUALITY_SCOPE, str(session.pk), window) > limit:
        return too_many(f"Quality check rate exceeded ({limit} per second).", window)
    return None


def selfie_rate_exceeded(session: CaptureSession) -> Answered | None:
    """A refused selfie takes no quota (as /liveness's 422), so its retries are bounded here:
    the component retries after a refusal only once the gates pass again (over a second)."""
    limit = settings.SESSION_SELFIE_PER_MIN
    window = Window.current(60)
    if counters.hit(SELFIE_SCOPE, str(session.pk), window) > limit:
        return too_many(f"Selfie rate exceeded ({limit} per minute).", window)
    return None


# --- quality -----------------------------------------------------------------------------


def gate_report(engine: LivenessEngine, image: np.ndarray) -> dict[str, object]:
    """Detection and every quality gate (crop policy ``refuse``: the component aims at a
    full frame), no classifier: the body of POST /sessions/{id}/quality."""
    height, width = image.shape[:2]
    faces = engine.faces(image)
    face = max(faces, key=lambda f: f.box[2] * f.box[3], default=None)
    report: dict[str, object] = {"width": width, "height": height, "face": None, "capture": None}
    if face is None:
        codes = ["no_face"]
    else:
        measures = quality.measure(image, face, faces)
        codes = quality.failures(measures, engine.thresholds, "refuse")
        x, y, w, h = (round(float(v), 1) for v in face.box)
        report["face"] = {"x": x, "y": y, "w": w, "h": h, "score": round(float(face.score), 3)}
        report["capture"] = quality.capture_of(measures, engine.thresholds)
    failures = [{"code": code, "error": quality.REFUSALS[code]} for code in codes]
    first = failures[0] if failures else {"code": None, "error": None}
    return {"passed": not failures, **first, "failures": failures, **report}


def check_quality(
    session: CaptureSession, payload: dict[str, object], request_id: str
) -> JsonResponse:
    """Called once the session is open and within every rate and the quota (capture.views)."""
    data = image_bytes(payload.get("selfie_image"))
    engine = engine_or_503()
    return JsonResponse(gate_report(engine, decode(engine, data, QUALITY_LIMITS)))


# --- selfie ------------------------------------------------------------------------------


def frame_bytes(payload: dict[str, object]) -> list[bytes]:
    """One ``selfie_image`` or a burst of up to three ``frames``, as image bytes."""
    frames = payload.get("frames")
    if frames is None:
        return [image_bytes(payload.get("selfie_image"))]
    if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES:
        raise Answered(responses.error(FRAMES_INVALID, 400))
    return [image_bytes(frame) for frame in frames]


@dataclass(frozen=True)
class Fused:
    logit: float
    p_live: float
    capture: str
    frames: int


def fuse(verdicts: list[Verdict]) -> Fused:
    """A burst's verdict: the mean of the frames' fused logits (like the profile fusion of
    models), so one confident frame is not averaged away by unsure ones; "frame" only when
    every frame was a full camera frame."""
    z = math.fsum(v.logit for v in verdicts) / len(verdicts)
    capture = "frame" if all(v.capture == "frame" for v in verdicts) else "crop"
    return Fused(z, sigmoid(z), capture, len(verdicts))


def claim(session: CaptureSession) -> bool:
    """open -> processing, by one conditional UPDATE: of concurrent selfies exactly one wins
    (SQLite serialises writers; PostgreSQL re-checks the row's state after its lock)."""
    claimed = CaptureSession.objects.filter(
        pk=session.pk, state=CaptureSession.OPEN, expires_at__gt=timezone.now()
    ).update(state=CaptureSession.PROCESSING)
    return claimed == 1


def release(session: CaptureSession, refused_code: str = "") -> None:
    """processing -> open: no verdict was reached (gate refused, quota, error)."""
    fields: dict[str, object] = {"state": CaptureSession.OPEN}
    if refused_code:
        fields["refused_code"] = refused_code
    CaptureSession.objects.filter(pk=session.pk, state=CaptureSession.PROCESSING).update(**fields)


def finish(session: CaptureSession, is_live: bool, score: float, fused: Fused) -> None:
    updated = CaptureSession.objects.filter(pk=session.pk, state=CaptureSession.PROCESSING).update(
        state=CaptureSession.DONE,
        is_live=is_live,
        score=score,
        capture=fused.capture,
        frames=fused.frames,
        refused_code="",
        finished_at=timezone.now(),
    )
    if updated != 1:
        raise RuntimeError(f"session {session.pk} lost its claim")  # rolls the unit back


def judge(session: CaptureSession, images: list[np.ndarray], request_id: str) -> None:
    """Run the whole check on a claimed session; the unit, the record and the verdict are
    written in one transaction. Raises Rejected / FaceRefused when no verdict is reached."""
    started = time.perf_counter()
    tenant = session.tenant
    engine = engine_or_503()
    try:
        verdicts = engine.analyse_burst(images, tenant.profile, tenant.crop_policy)
    except FaceRefused as exc:
        record(tenant, request_id, started, consume=False, refused_code=exc.code)
        metrics.observe_verdict(tenant.pk, tenant.name, "refused", exc.code)
        raise
    fused = fuse(verdicts)
    score = tenant.score(fused.logit, fused.p_live)
    is_live = score >= tenant.threshold
    outcome = {"is_live": is_live, "score": score, "capture": fused.capture}
    with transaction.atomic():
        if not record(tenant, request_id, started, consume=True, **outcome):
            metrics.observe_rejection(tenant.pk, tenant.name, REASONS["limit_reached"])
            raise Rejected(Rejection("limit_reached"))
        finish(session, is_live, score, fused)
    metrics.observe_verdict(tenant.pk, tenant.name, "live" if is_live else "spoof")


def take_selfie(
    session: CaptureSession, payload: dict[str, object], request_id: str
) -> JsonResponse:
    """202 once the capture is judged (the verdict goes to the backend only). Called once the
    session is open and within every rate and the quota (capture.views)."""
    frames = frame_bytes(payload)
    engine = engine_or_503()
    images = [decode(engine, data, SELFIE_LIMITS) for data in frames]
    if not claim(session):
        session.refresh_from_db()
        raise conflict(session)
    finished = False
    try:
        judge(session, images, request_id)
        finished = True
    except FaceRefused as exc:
        release(session, exc.code)
        finished = True  # released, with the gate's code
        return responses.respond(Rejection(exc.code))
    finally:
        if not finished:
            release(session)
    body = {"session_id": str(session.pk), "state": "received", "frames": len(images)}
    return JsonResponse(body, status=202)


# --- verdict (backend) -------------------------------------------------------------------


def state_of(session: CaptureSession) -> str:
    if session.state != CaptureSession.DONE and session.expires_at <= timezone.now():
        return "expired"
    return session.state


def describe(session: CaptureSession) -> dict[str, object]:
    """The body of GET /sessions/{id}: the verdict in /liveness's shape once there is one."""
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
        score = float(session.score or 0.0)
        body["liveness_result"] = {"is_live": int(bool(session.is_live)), "liveness_score": score}
        body["message"] = responses.SUCCESS
    elif session.refused_code:
        code = session.refused_code
        body["refused"] = {"code": code, "error": quality.REFUSALS.get(code, code)}
    return body
