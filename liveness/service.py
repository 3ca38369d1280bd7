"""One liveness check: image -> engine -> quota unit and record, in one transaction. Returns
an outcome (liveness.outcomes); no HTTP here."""

import logging
import math
import time

from django.db import transaction

from accounts import quota
from accounts.models import Tenant
from liveness.images import Base64Error, decode_base64, strip_data_uri
from liveness.models import LivenessCheck
from liveness.outcomes import Judged, Outcome, Rejected, Rejection
from liveness.runtime import EngineUnavailable, get_engine
from ml.engine import Verdict
from ml.errors import FaceRefused, ImageError, ModelUnavailable
from telemetry import metrics

log = logging.getLogger(__name__)
# Rejections before the engine gave a verdict -> the ``reason`` label of facia_liveness_verdicts.
REASONS = {
    "image_required": "invalid_input",
    "image_not_a_string": "invalid_input",
    "image_invalid": "invalid_input",
    "limit_reached": "quota",
    "not_ready": "unavailable",
}


def _rejected(code: str) -> Rejected:
    return Rejected(Rejection(code))


def image_bytes(value: object) -> bytes:
    """The raw image bytes of the selfie_image field."""
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


def require_room(tenant: Tenant) -> None:
    """429 before the image is even read once the limit is reached, as read at authentication:
    a tenant with no quota left cannot make a worker decode. The exact, race-free check is the
    conditional UPDATE in record()."""
    if not quota.has_room(tenant):
        raise _rejected("limit_reached")


def judge(tenant: Tenant, data: bytes) -> Verdict:
    """Decode and run the engine with the tenant's profile and crop policy (the engine times
    the decode). Nothing is consumed here; FaceRefused when the image cannot be judged."""
    try:
        engine = get_engine()
    except EngineUnavailable as exc:
        log.error("engine unavailable: %s", exc)
        raise _rejected("not_ready") from exc
    try:
        return engine.check(data, profile=tenant.profile, crop_policy=tenant.crop_policy)
    except ImageError as exc:
        raise _rejected("image_invalid") from exc
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
    tenant: Tenant, request_id: str, started: float, consume: bool, **outcome: object
) -> bool:
    """Store the check; when ``consume``, take its unit of quota in the same transaction.

    One transaction means a crash or a lost database at any point leaves either both the unit
    and the row, or neither. False (nothing written) when the limit was reached meanwhile.
    """
    latency_ms = (time.perf_counter() - started) * 1000
    with transaction.atomic():
        if consume and not quota.reserve(tenant.pk):
            return False
        LivenessCheck.insert(tenant=tenant, latency_ms=latency_ms, request_id=request_id, **outcome)
    _log_check(tenant, request_id, latency_ms, outcome)
    return True


def check_selfie(tenant: Tenant, selfie: object, request_id: str) -> Outcome:
    """The check of an authenticated tenant's ``selfie_image`` value."""
    started = time.perf_counter()
    try:
        require_room(tenant)
        verdict = judge(tenant, image_bytes(selfie))
    except Rejected as exc:
        metrics.observe_rejection(tenant.pk, tenant.name, REASONS[exc.rejection.code])
        return exc.rejection
    except FaceRefused as exc:
        record(tenant, request_id, started, consume=False, refused_code=exc.code)
        metrics.observe_verdict(tenant.pk, tenant.name, "refused", exc.code)
        return Rejection(exc.code)
    score = tenant.score(verdict.logit, verdict.p_live)  # calibrated when the tenant is
    if not math.isfinite(score):  # never an answer (NaN is not JSON), a unit or a record
        log.error("non-finite liveness score %s for tenant %s", score, tenant.pk)
        metrics.observe_rejection(tenant.pk, tenant.name, REASONS["not_ready"])
        return Rejection("not_ready")
    is_live = score >= tenant.threshold
    outcome = {"is_live": is_live, "score": score, "capture": verdict.capture}
    if not record(tenant, request_id, started, consume=True, **outcome):
        metrics.observe_rejection(tenant.pk, tenant.name, REASONS["limit_reached"])
        return Rejection("limit_reached")
    metrics.observe_verdict(tenant.pk, tenant.name, "live" if is_live else "spoof")
    metrics.observe_stages(verdict.timings_ms, (time.perf_counter() - started) * 1000)
    return Judged(is_live, score, verdict.profile, verdict.capture)
