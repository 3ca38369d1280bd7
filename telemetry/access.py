"""Who may read /metrics: a bearer token (METRICS_TOKEN) or a client in METRICS_ALLOWED_NETWORKS."""

import hmac
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_in_networks(request: HttpRequest, networks: Iterable[Network]) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # An IPv4 peer of a dual-stack socket (HOST=::): matched by an IPv4 network, and by
        # one an operator wrote in the mapped form (::ffff:10.0.0.0/104).
        forms.append(address.ipv4_mapped)
    return any(form in network for form in forms for network in networks)


def may_read_metrics(request: HttpRequest) -> bool:
    """A presented token must be right; without one, only the allowed networks get in."""
    presented = bearer_token(request)
    expected = settings.METRICS_TOKEN
    if presented is not None:
        return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())
    return client_in_networks(request, settings.METRICS_ALLOWED_NETWORKS)
