"""Abuse throttles: failed hash_id attempts per client IP, request rate per tenant.

Each returns the exceeded window (for ``Retry-After``) or None; liveness.answers says how a
throttled request is answered (429 with an ``error`` body, distinct from the quota's 429).
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from guard import counters
from guard.counters import Window

AUTH_SCOPE = "auth-fail"
RATE_SCOPE = "tenant-rate"
SUBJECT_MAX = 64

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return ip


def _is_proxy(ip: Address | None) -> bool:
    return ip is not None and any(ip in network for network in settings.TRUSTED_PROXIES)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, unless that peer is a trusted proxy
    (``TRUSTED_PROXIES``). Then X-Forwarded-For is read from the right, where each proxy
    appended the address it received from: the first that is not a trusted proxy is the
    client; anything to its left is the client's own claim and never read. A hop that is not
    an address (a proxy writing "unknown") stops the walk at the last proxy's address."""
    peer = str(request.META.get("REMOTE_ADDR", ""))
    ip = _address(peer)
    client = peer if ip is None else str(ip)
    if not _is_proxy(ip):
        return client[:SUBJECT_MAX]
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        ip = _address(hop)
        if ip is None:
            break
        client = str(ip)
        if not _is_proxy(ip):
            break
    return client[:SUBJECT_MAX]


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
        counters.hit(AUTH_SCOPE, client, _auth_window(), bounded=True)


def tenant_rate_exceeded(tenant_id: int, per_minute: int | None) -> Window | None:
    """Count this request against the tenant's per-minute rate; the window once it is over."""
    if per_minute is None:
        return None
    window = Window.current(60)
    if counters.hit(RATE_SCOPE, str(tenant_id), window) > per_minute:
        return window
    return None
