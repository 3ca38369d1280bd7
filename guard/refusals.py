"""Counts of /liveness requests refused with 401 or 429 (``guard.models.Refusal``): one upsert
per refusal, none on a verdict. A refusal with no known tenant is counted per client address
bucket, the /24 (IPv4) or /64 (IPv6) network, not the address itself: enough to see where a
flood comes from, less than a log of who called."""

import ipaddress
from datetime import date

from django.db import connection
from django.utils import timezone

from guard.models import Refusal

TABLE = Refusal._meta.db_table
_UPSERT = (
    f"INSERT INTO {TABLE} (day, code, status, tenant_id, client, hits) "
    "VALUES (%s, %s, %s, %s, %s, 1) "
    f"ON CONFLICT (day, code, tenant_id, client) DO UPDATE SET hits = {TABLE}.hits + 1"
)
UNKNOWN = "unknown"


def client_bucket(address: str) -> str:
    """The network an address is counted under: a.b.c.0/24, or the /64 of an IPv6 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def prune_before(day: date) -> int:
    """Delete the counts of days before ``day``; how many rows were deleted."""
    deleted, _ = Refusal.objects.filter(day__lt=day).delete()
    return deleted


def count(code: str, status: int, tenant_id: int | None, address: str) -> str:
    """Count one refusal; the bucket it was counted under ("" when a tenant was known)."""
    client = "" if tenant_id else client_bucket(address)
    today: date = timezone.now().date()
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [today, code, status, tenant_id or 0, client])
    return client
