"""The check, for /liveness and a capture session's selfie alike: the image field (base64,
optionally behind a ``data:image/...;base64,`` prefix) -> pixels -> engine -> score -> the
quota unit, the record and the caller's own step in one transaction -> metrics. Returns an
outcome (liveness.answers); no HTTP here."""

import binascii
import functools
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pybase64
from django.db import IntegrityError, transaction

from accounts.models import HashId, Tenant
from liveness.answers import Judged, Outcome, Rejected, Rejection, counted
from liveness.models import LivenessCheck
from liveness.runtime import EngineUnavailable, get_engine
from ml.decode import ANY_CAMERA, Frame, Limits
from ml.engine import Fused, LivenessEngine
from ml.errors import (
    FaceRefused,
    ImageError,
    ModelUnavailable,
    PixelsOverLimit,
    ScansOverLimit,
)
from ml.text import escape_controls
from telemetry import metrics
from telemetry.logs import current_request_id

log = logging.getLogger(__name__)
# A decode error's text is the decoder's own words and numbers, never the image's bytes; 200
# characters hold the longest (libjpeg's warnings run to ~80).
REASON_CHARS = 200
DATA_URI_START = re.compile(r"\s*data:", re.IGNORECASE)
BASE64_MARK = ";base64"
WHITESPACE = re.compile(r"\s+")


class Base64Error(ValueError):
    """The field is not valid base64."""


def strip_data_uri(value: str) -> str:
    """``value`` without a leading ``data:<anything but a comma>;base64,`` prefix.

    A find, not a regex with a repeated group: such a pattern keeps a backtracking frame per
    ``;`` (2.4 GB for a 16.7 MB field of them).
    """
    start = DATA_URI_START.match(value)
    if start is None:
        return value
    comma = value.find(",", start.end())
    mark = comma - len(BASE64_MARK)
    if mark < start.end() or value[mark:comma].lower() != BASE64_MARK:
        return value
    return value[comma + 1 :]


def decode_base64(value: str) -> bytes:
    """Bytes of a standard or URL-safe base64 string; tolerant of line breaks and lost padding."""
    # pybase64 (SIMD): 0.2 ms instead of the standard library's 12 ms for a phone photo.
    try:  # the common case, strict standard base64, without copying the string three times
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass
    text = WHITESPACE.sub("", value)
    text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Base64Error(str(exc)) from exc


# Rejections before the engine gave a verdict -> the ``reason`` label of facia_liveness_verdicts.
REASONS = {
    "image_required": "invalid_input",
    "image_not_a_string": "invalid_input",
    "image_invalid": "invalid_input",
    "image_too_many_scans": "invalid_input",
    "image_too_many_pixels": "invalid_input",
    "limit_reached": "quota",
    "not_ready": "unavailable",
}
# The caller's own step, written with the unit and the record or not at all (a session's
# verdict), given the record's id; it may raise to roll both back.
Then = Callable[[Judged, int], None]
# Whether the caller's own challenge decides this verdict instead (a when_unsure tenant's
# session selfie in its band): recorded not live, counted "unsure", until the caller settles it.
Hold = Callable[[Judged], bool]
# The caller's step that settles a verdict ``hold`` held (its own writes), in the transaction
# that updates the record: what it decided, or None (nothing decided; its writes still kept).
Settle = Callable[[], "Settled | None"]
# What stores a recorded outcome's answer for an Idempotency-Key (liveness.idempotency), in the
# record's transaction, given the record's id (deleting the record deletes the answer); it may
# raise to roll the unit and the record back.
Keep = Callable[[Outcome, int], None]


@dataclass(frozen=True)
class Settled:
    """A held check's final verdict, as its caller's challenge decided it, with what its log
    line repeats of the check (kept by the caller: the record may be deleted meanwhile)."""

    check_id: int | None  # the held check's record
    is_live: bool
    request_id: str
    score: float | None
    capture: str


def _rejected(code: str) -> Rejected:
    return Rejected(Rejection(code))


def image_bytes(value: object) -> bytes:
    """The raw image bytes of a selfie_image (or frame) field."""
    if value is None or value == "":
        raise _rejected("image_required")
    if not isinstance(value, str):
        raise _rejected("image_not_a_string")
    encoded = strip_data_uri(value)
    if not encoded.strip():
        raise _rejected("image_required")
    try:
        return decode_base64(encoded)
    except Base64Error as exc:
        raise _rejected("image_invalid") from exc


def engine_or_rejected() -> LivenessEngine:
    try:
        return get_engine()
    except EngineUnavailable as exc:
        log.error("engine unavailable: %s", exc)
        raise _rejected("not_ready") from exc


def pixels_detail(exc: PixelsOverLimit) -> dict[str, int]:
    """What the answer names: the image's size and pixels, and the call's bound."""
    pixels = exc.width * exc.height
    return {"width": exc.width, "height": exc.height, "pixels": pixels, "limit": exc.limit}


def decode_frame(engine: LivenessEngine, data: bytes, limits: Limits) -> Frame:
    """The decoded image, with the frame's size and the scale from the image's pixels to the
    frame's: what a session's quality report needs to answer in the frame's pixels, and what
    the engine decodes again finer when a large JPEG's reduced decode left its face too small
    (ml.engine ``LivenessEngine.gated``)."""
    try:
        return engine.decode_frame(data, limits)
    except ScansOverLimit as exc:  # a valid file over the caller's cost bound: say which
        raise Rejected(Rejection("image_too_many_scans", {"limit": exc.limit})) from exc
    except PixelsOverLimit as exc:
        raise Rejected(Rejection("image_too_many_pixels", pixels_detail(exc))) from exc
    except ImageError as exc:
        raise _rejected("image_invalid") from exc


@dataclass(frozen=True)
class Images:
    """A check's decoded frames, from the moment their first byte was read."""

    frames: list[Frame]
    started: float  # time.perf_counter()
    decode_ms: float


def read_images(tenant: Tenant, values: Sequence[object], limits: Limits = ANY_CAMERA) -> Images:
    """base64, then pixels within ``limits``: Rejected (400 or 503) before anything is judged,
    counted as the tenant's refused verdict."""
    started = time.perf_counter()
    try:
        data = [image_bytes(value) for value in values]
        engine = engine_or_rejected()
        decoding = time.perf_counter()
        frames = [decode_frame(engine, item, limits) for item in data]
    except Rejected as exc:
        metrics.observe_rejection(tenant.pk, tenant.name, REASONS[exc.rejection.code])
        if isinstance(exc.__cause__, ImageError):  # the answer names no reason: the log does
            log.info(
                "image refused tenant=%s request_id=%s code=%s reason=%s",
                tenant.pk,
                current_request_id.get(),
                exc.rejection.code,
                escape_controls(str(exc.__cause__))[:REASON_CHARS],
            )
        raise
    return Images(frames, started, (time.perf_counter() - decoding) * 1000)


def analyse(tenant: Tenant, images: Images) -> Fused:
    """The engine's verdict under the tenant's profile and crop policy; FaceRefused when a
    gate refuses."""
    engine = engine_or_rejected()
    try:
        return engine.judge(images.frames, tenant.profile, tenant.crop_policy)
    except ModelUnavailable as exc:  # a model left for first use, or one giving NaN (ModelFault)
        log.error("engine unavailable for profile %s: %s", tenant.profile, exc)
        raise _rejected("not_ready") from exc


def _log_check(
    tenant: Tenant, request_id: str, latency_ms: float, outcome: dict[str, object]
) -> None:
    details = " ".join(f"{key}={value}" for key, value in outcome.items())
    log.info(
        "check tenant=%s request_id=%s latency_ms=%.1f %s",
        tenant.pk,
        request_id,
        latency_ms,
        details,
    )


def record(
    tenant: Tenant,
    request_id: str,
    started: float,
    judged: Judged | None = None,
    then: Then | None = None,
    kept: Callable[[int], None] | None = None,
    digest: str | None = None,
    **outcome: object,
) -> bool:
    """Store the check; for a verdict (``judged``), take its unit of quota and run ``then``
    in the same transaction; ``kept`` (storing the answer, given the record's id) last in it,
    for any outcome. ``digest``: the hash_id the check is charged under (``Caller``).

    One transaction means a crash or a lost database at any point leaves the unit, the row,
    the caller's step and the stored answer all written, or none. False (nothing written)
    when the limit was reached meanwhile, the tenant was deleted or deactivated meanwhile, or
    the hash_id ``digest`` revoked.
    """
    latency_ms = (time.perf_counter() - started) * 1000
    try:
        with transaction.atomic():
            if judged is not None and not Tenant.reserve_unit(tenant.pk, digest):
                return False
            check_id = LivenessCheck.insert(
                tenant=tenant, latency_ms=latency_ms, request_id=request_id, **outcome
            )
            if judged is not None and then is not None:
                then(judged, check_id)
            if kept is not None:
                kept(check_id)
    except IntegrityError:
        if _exists(tenant):
            raise
        return False
    _log_check(tenant, request_id, latency_ms, outcome)
    return True


def _exists(tenant: Tenant) -> bool:
    """Whether ``tenant`` is still there. A gate's 422 takes no unit, so no UPDATE locks the
    tenant's row before its record: a tenant deleted meanwhile fails the record's foreign
    key at COMMIT (checked there on SQLite and PostgreSQL alike), which would read as a
    database outage (503 with an ERROR line); asked first, it gets the 401 its hash_id gets."""
    return Tenant.objects.filter(pk=tenant.pk).exists()


def _unavailable(tenant: Tenant, score: float) -> Rejection:
    log.error("non-finite liveness score %s for tenant %s", score, tenant.pk)
    metrics.observe_rejection(tenant.pk, tenant.name, REASONS["not_ready"])
    return Rejection("not_ready")


@dataclass(frozen=True)
class Caller:
    """Whom a check is charged for, besides its tenant. ``digest``: the hash_id it was
    authenticated with (/liveness's own, a capture session's opener), which the unit asks to be
    still unrevoked ("": none left, the unit refused). ``counts_401``: whether the 401 of a
    check refused for a tenant deactivated or deleted, or that hash_id revoked, since it was
    authenticated is counted (a hash_id call's 401s are; a session token call's are not, its
    caller answering as its token would be answered from then on)."""

    digest: str | None
    counts_401: bool = True


def _no_unit(tenant: Tenant, caller: Caller) -> Rejection:
    """No unit was taken: the limit was reached meanwhile (429), or since it was authenticated
    the tenant was deleted or deactivated or its hash_id revoked (401 invalid_credentials, as
    its hash_id gets from then on: counted when the caller's 401s are)."""
    if not _exists(tenant):
        rejection = Rejection("invalid_credentials")
        # With no tenant, as a deleted hash_id's 401 is: its counts were deleted with it
        # (accounts.models.forget_refusals), and one under its id would outlive it. The
        # client's address is not known here: counted under "unknown".
        if caller.counts_401:
            counted(rejection, None)
        return rejection
    if not _admitted(tenant, caller.digest):
        rejection = Rejection("invalid_credentials")
        if caller.counts_401:
            counted(rejection, tenant)  # as a revoked hash_id's or an inactive tenant's 401 is
        return rejection
    return _out_of_quota(tenant)


def _admitted(tenant: Tenant, digest: str | None) -> bool:
    """Whether ``tenant`` is still active and the hash_id ``digest`` (when given) still
    unrevoked: what reserve_unit asks besides the limit."""
    revoked = digest is not None and not HashId.objects.active().filter(digest=digest).exists()
    return not revoked and Tenant.objects.filter(pk=tenant.pk, is_active=True).exists()


def _out_of_quota(tenant: Tenant) -> Rejection:
    rejection = Rejection("limit_reached")
    metrics.observe_rejection(tenant.pk, tenant.name, REASONS["limit_reached"])
    counted(rejection, tenant)  # as the admission's quota 429 is
    return rejection


def _bound(keep: Keep | None, outcome: Outcome) -> Callable[[int], None] | None:
    return None if keep is None else functools.partial(keep, outcome)


def judge_and_record(
    tenant: Tenant,
    images: Images,
    request_id: str,
    caller: Caller,
    then: Then | None = None,
    keep: Keep | None = None,
    hold: Hold | None = None,
) -> Outcome:
    """Judge ``images`` for an admitted tenant and record the outcome: a verdict takes one
    unit of quota, a quality gate's 422 none. ``then`` runs inside the verdict's
    transaction, ``keep`` inside the transaction of any recorded outcome (201 and 422). A
    verdict ``hold`` holds is recorded not live and counted "unsure": its caller settles it.
    A 401 invalid_credentials: no unit, as ``caller`` says (``_no_unit``)."""
    try:
        fused = analyse(tenant, images)
    except Rejected as exc:
        metrics.observe_rejection(tenant.pk, tenant.name, REASONS[exc.rejection.code])
        return exc.rejection
    except FaceRefused as exc:
        refused = Rejection(exc.code)
        kept = _bound(keep, refused)
        if not record(tenant, request_id, images.started, kept=kept, refused_code=exc.code):
            return _no_unit(tenant, caller)  # the tenant deleted meanwhile: 401
        metrics.observe_verdict(tenant.pk, tenant.name, "refused", exc.code)
        return refused
    score = tenant.score(fused.logit, fused.capture, fused.p_live)  # calibrated when the tenant is
    if not math.isfinite(score):  # never an answer (NaN is not JSON), a unit or a record
        return _unavailable(tenant, score)
    judged = Judged(score >= tenant.threshold, score, tenant.profile, fused.capture, fused.frames)
    held = hold is not None and hold(judged)
    outcome: dict[str, object] = {
        "is_live": judged.is_live and not held,
        "score": score,
        "capture": fused.capture,
    }
    shadow = tenant.shadow_verdict(fused.logit, fused.capture, time.time())
    if shadow is not None and math.isfinite(shadow[0]):
        outcome["shadow_score"], outcome["shadow_is_live"] = shadow
    kept = _bound(keep, judged)
    if not record(tenant, request_id, images.started, judged, then, kept, caller.digest, **outcome):
        return _no_unit(tenant, caller)
    verdict = "unsure" if held else "live" if judged.is_live else "spoof"
    metrics.observe_verdict(tenant.pk, tenant.name, verdict)
    timings = {**fused.timings_ms, "decode": images.decode_ms}
    metrics.observe_stages(timings, (time.perf_counter() - images.started) * 1000)
    return judged


def settle_held(tenant: Tenant, settle: Settle) -> bool | None:
    """The final verdict of a check ``judge_and_record`` held: ``settle`` (the caller's step)
    decides it and the record says it, in one transaction; once committed, the check's log
    line for that verdict and its count with reason "challenge". The verdict, or None when
    ``settle`` decided nothing."""
    with transaction.atomic():
        settled = settle()
        if settled is None:
            return None
        latency_ms = _settle_record(settled)
    _log_settled(tenant, settled, latency_ms)
    outcome = "live" if settled.is_live else "spoof"
    metrics.observe_verdict(tenant.pk, tenant.name, outcome, "challenge")
    return settled.is_live


def _settle_record(settled: Settled) -> float:
    """The held record says the final verdict; its latency, for the log line (0.0 when the
    record was deleted meanwhile: prune_checks, an admin)."""
    if settled.check_id is None:
        return 0.0
    LivenessCheck.objects.filter(pk=settled.check_id).update(is_live=settled.is_live)
    check = LivenessCheck.objects.filter(pk=settled.check_id)
    return check.values_list("latency_ms", flat=True).first() or 0.0


def _log_settled(tenant: Tenant, settled: Settled, latency_ms: float) -> None:
    """The settled check's line, as ``record`` writes one: its own request id, latency, score
    and capture (joining the line written when it was held), the final verdict."""
    outcome = {"is_live": settled.is_live, "score": settled.score, "capture": settled.capture}
    _log_check(tenant, settled.request_id, latency_ms, {**outcome, "reason": "challenge"})


def check_selfie(
    tenant: Tenant, selfie: object, request_id: str, keep: Keep | None = None
) -> Outcome:
    """/liveness's check of an admitted tenant's ``selfie_image`` value; ``keep`` stores its
    answer for an Idempotency-Key."""
    try:
        images = read_images(tenant, [selfie])
    except Rejected as exc:
        return exc.rejection
    caller = Caller(getattr(tenant, "hash_digest", None))  # HashId.tenant_for's column
    return judge_and_record(tenant, images, request_id, caller, keep=keep)
