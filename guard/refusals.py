"""Counts of /liveness requests refused with 401 or 429 (``guard.models.Refusal``): one upsert
per refusal, none on a verdict. A refusal with no known tenant is counted per client address
bucket, the /24 (IPv4) or /64 (IPv6) network, not the address itself: enough to see where a
flood comes from, less than a log of who called."""

import ipaddress
from datetime import date
from typing import Any

from django.db import connection
from django.utils import timezone

from guard.models import Refusal

TABLE = Refusal._meta.db_table
_UPSERT = (
    f"INSERT INTO {TABLE} (day, code, status, tenant_id, client, hits) "
    "VALUES (%s, %s, %s, %s, %s, 1) "
    f"ON CONFLICT (day, code, tenant_id, client) DO UPDATE SET hits = {TABLE}.hits + 1"
)
_BUMP = (
    f"UPDATE {TABLE} SET hits = hits + 1 "
    "WHERE day = %s AND code = %s AND tenant_id = 0 AND client = %s"
)
_BUCKETS = (
    f"SELECT COUNT(DISTINCT client), MAX(CASE WHEN client = %s THEN 1 ELSE 0 END) "
    f"FROM {TABLE} WHERE tenant_id = 0 AND day = %s"
)
UNKNOWN = "unknown"
# Client buckets counted per day by name; refusals from any more are counted as OTHER. A
# spray of sources (IPv6 /64s are plentiful) wrote a row per bucket, without bound; the
# sources of a real flood are in the first thousand, and the admin page lists no more.
MAX_BUCKETS_PER_DAY = 1000
OTHER = "other"


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
        if client:
            cursor.execute(_BUMP, [today, code, client])
            if cursor.rowcount == 1:
                return client
            client = _bucket_or_other(cursor, today, client)
        cursor.execute(_UPSERT, [today, code, status, tenant_id or 0, client])
    return client


def _bucket_or_other(cursor: Any, today: date, client: str) -> str:
    """``client`` when it is already counted today or there is room for it, else OTHER (a
    count over at most MAX_BUCKETS_PER_DAY buckets, only for a bucket new to a code today)."""
    cursor.execute(_BUCKETS, [client, today])
    buckets, known = cursor.fetchone()
    return client if known or (buckets or 0) < MAX_BUCKETS_PER_DAY else OTHER
