"""One liveness check: image -> engine -> quota unit and record, in one transaction."""

import logging
import time

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from accounts import quota
from accounts.models import Tenant
from liveness import responses
from liveness.images import Base64Error, decode_base64, strip_data_uri
from liveness.models import LivenessCheck
from liveness.runtime import EngineUnavailable, get_engine
from ml.engine import Verdict
from ml.errors import FaceRefused, ImageError
from ops import metrics

log = logging.getLogger(__name__)
NOT_A_STRING = "selfie_image must be a base64-encoded string."


class Refusal(Exception):
    """Ends the check early with a ready response."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def image_bytes(value: object) -> bytes:
    """The raw image bytes of the selfie_image field."""
    if value is None or value == "":
        raise Refusal(responses.error(responses.IMAGE_REQUIRED, 400))
    if not isinstance(value, str):
        raise Refusal(responses.error(NOT_A_STRING, 400))
    encoded = strip_data_uri(value)
    if not encoded.strip():
        raise Refusal(responses.error(responses.IMAGE_REQUIRED, 400))
    try:
        return decode_base64(encoded)
    except Base64Error as exc:
        raise Refusal(responses.error(responses.IMAGE_INVALID, 400)) from exc


def require_room(tenant: Tenant) -> None:
    """429 before the image is even read once the limit is reached, as read at authentication:
    a tenant with no quota left cannot make a worker decode. The exact, race-free check is the
    conditional UPDATE in record()."""
    if not quota.has_room(tenant):
        raise Refusal(responses.message(responses.LIMIT_REACHED, 429))


def analyse(tenant: Tenant, data: bytes) -> Verdict:
    """Decode and run the engine. Nothing is consumed here."""
    try:
        engine = get_engine()
    except EngineUnavailable as exc:
        log.error("engine unavailable: %s", exc)
        raise Refusal(responses.error("Service is not ready, try again later.", 503)) from exc
    decode_started = time.perf_counter()
    try:
        image = engine.decode(data)
    except ImageError as exc:
        raise Refusal(responses.error(responses.IMAGE_INVALID, 400)) from exc
    decode_ms = (time.perf_counter() - decode_started) * 1000
    verdict = engine.analyse(image, profile=tenant.profile, crop_policy=tenant.crop_policy)
    verdict.timings_ms["decode"] = decode_ms
    return verdict


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
    request: HttpRequest, tenant: Tenant, started: float, consume: bool, **outcome: object
) -> bool:
    """Store the check; when ``consume``, take its unit of quota in the same transaction.

    One transaction means a crash or a lost database at any point leaves either both the unit
    and the row, or neither. False (nothing written) when the limit was reached meanwhile.
    """
    latency_ms = (time.perf_counter() - started) * 1000
    request_id = getattr(request, "request_id", "")
    with transaction.atomic():
        if consume and not quota.reserve(tenant.pk):
            return False
        LivenessCheck.insert(tenant=tenant, latency_ms=latency_ms, request_id=request_id, **outcome)
    _log_check(tenant, request_id, latency_ms, outcome)
    return True


def check_selfie(request: HttpRequest) -> HttpResponse:
    """The body of POST /liveness once JSON is parsed and the tenant is authenticated."""
    started = time.perf_counter()
    tenant: Tenant = request.tenant  # type: ignore[attr-defined]
    payload: dict[str, object] = request.payload  # type: ignore[attr-defined]
    try:
        require_room(tenant)
        verdict = analyse(tenant, image_bytes(payload.get("selfie_image")))
    except Refusal as refusal:
        metrics.observe_refusal(tenant, refusal.response.status_code)
        return refusal.response
    except FaceRefused as exc:
        record(request, tenant, started, consume=False, refused_code=exc.code)
        metrics.observe_verdict(tenant, "refused", exc.code)
        return responses.error(exc.message, 422, code=exc.code)
    score = tenant.score(verdict.logit, verdict.p_live)  # calibrated when the tenant is
    is_live = score >= tenant.threshold
    outcome = {"is_live": is_live, "score": score, "capture": verdict.capture}
    if not record(request, tenant, started, consume=True, **outcome):
        metrics.observe_refusal(tenant, 429)
        return responses.message(responses.LIMIT_REACHED, 429)
    metrics.observe_verdict(tenant, "live" if is_live else "spoof")
    metrics.observe_stages(verdict.timings_ms, (time.perf_counter() - started) * 1000)
    response = responses.success(is_live, score)
    response["X-Liveness-Profile"] = verdict.profile
    response["X-Liveness-Capture"] = verdict.capture
    return response
