"""Who may read /metrics: a bearer token (METRICS_TOKEN) or a client in METRICS_ALLOWED_NETWORKS."""

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(spec: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip()) for item in spec.split(",") if item.strip())


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_in_networks(request: HttpRequest, spec: str) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in parse_networks(spec))


def may_read_metrics(request: HttpRequest) -> bool:
    """A presented token must be right; without one, only the allowed networks get in."""
    presented = bearer_token(request)
    expected = settings.METRICS_TOKEN
    if presented is not None:
        return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())
    return client_in_networks(request, settings.METRICS_ALLOWED_NETWORKS)
