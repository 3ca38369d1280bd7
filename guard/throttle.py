"""Abuse throttles: failed hash_id attempts per client IP, request rate per tenant.

Each returns the exceeded window (for ``Retry-After``) or None; liveness.responses says how a
throttled request is answered (429 with an ``error`` body, distinct from the quota's 429).
"""

from django.conf import settings
from django.http import HttpRequest

from guard import counters
from guard.counters import Window

AUTH_SCOPE = "auth-fail"
RATE_SCOPE = "tenant-rate"
SUBJECT_MAX = 64


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


def auth_blocked(client: str) -> Window | None:
    """The current window when ``client`` already failed too often in it, else None."""
    limit = settings.AUTH_FAILURE_LIMIT
    if limit <= 0:
        return None
    window = _auth_window()
    if counters.hits(AUTH_SCOPE, client, window) >= limit:
        return window
    return None


def auth_failed(client: str) -> None:
    if settings.AUTH_FAILURE_LIMIT > 0:
        counters.hit(AUTH_SCOPE, client, _auth_window())


def tenant_rate_exceeded(tenant_id: int, per_minute: int | None) -> Window | None:
    """Count this request against the tenant's per-minute rate; the window once it is over."""
    if per_minute is None:
        return None
    window = Window.current(60)
    if counters.hit(RATE_SCOPE, str(tenant_id), window) > per_minute:
        return window
    return None
