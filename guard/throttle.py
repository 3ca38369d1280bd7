"""Abuse throttles: failed hash_id attempts per client IP, request rate per tenant.

Both answer 429 with ``Retry-After`` and an ``error`` body, distinct from the contract's quota
429 (``{"message": "Your request limit has been reached."}``).
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from guard import counters
from guard.counters import Window

AUTH_SCOPE = "auth-fail"
RATE_SCOPE = "tenant-rate"
TOO_MANY_FAILURES = "Too many failed authentication attempts. Try again later."
SUBJECT_MAX = 64


def too_many(message: str, window: Window) -> JsonResponse:
    response = JsonResponse({"error": message}, status=429)
    response["Retry-After"] = str(window.retry_after())
    return response


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the address the nearest trusted proxy saw (``TRUSTED_PROXY_COUNT``)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if proxies > 0 and len(hops) >= proxies:
        return hops[-proxies][:SUBJECT_MAX]
    return str(request.META.get("REMOTE_ADDR", ""))[:SUBJECT_MAX]


def _auth_window() -> Window:
    return Window.current(settings.AUTH_FAILURE_WINDOW_S)


def auth_blocked(request: HttpRequest) -> JsonResponse | None:
    """A 429 when this client already failed too often in the current window, else None."""
    limit = settings.AUTH_FAILURE_LIMIT
    if limit <= 0:
        return None
    window = _auth_window()
    if counters.hits(AUTH_SCOPE, client_ip(request), window) >= limit:
        return too_many(TOO_MANY_FAILURES, window)
    return None


def auth_failed(request: HttpRequest) -> None:
    if settings.AUTH_FAILURE_LIMIT > 0:
        counters.hit(AUTH_SCOPE, client_ip(request), _auth_window())


def tenant_rate_exceeded(tenant_id: int, per_minute: int | None) -> JsonResponse | None:
    """Count this request against the tenant's per-minute rate; a 429 once it is over."""
    if per_minute is None:
        return None
    window = Window.current(60)
    if counters.hit(RATE_SCOPE, str(tenant_id), window) > per_minute:
        return too_many(f"Request rate limit exceeded ({per_minute} per minute).", window)
    return None
