"""Fixed-window throttles: atomic counters, and the two that guard every hash_id.

The counters take one upsert per hit, exact across processes: ``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING`` is a single statement on both SQLite (3.35+) and PostgreSQL, so
concurrent workers never lose a hit and never read a stale count. The admin login throttle
(``guard.login``) and a session's own rates (``capture``) count on them too.

The throttles: failed hash_id attempts per client IP, request rate per tenant. Each returns
the exceeded window (for ``Retry-After``) or None; liveness.answers says how a throttled
request is answered (429 with an ``error`` body, distinct from the quota's 429).
"""

import ipaddress
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from guard.models import Counter

TABLE = Counter._meta.db_table
_UPSERT = (
    f"INSERT INTO {TABLE} (scope, subject, bucket, hits) VALUES (%s, %s, %s, 1) "
    f"ON CONFLICT (scope, subject, bucket) DO UPDATE SET hits = {TABLE}.hits + 1 "
    "RETURNING hits"
)
_SELECT = f"SELECT hits FROM {TABLE} WHERE scope = %s AND subject = %s AND bucket = %s"
_BUMP = (
    f"UPDATE {TABLE} SET hits = hits + 1 WHERE scope = %s AND subject = %s AND bucket = %s "
    "RETURNING hits"
)
_SUBJECTS = f"SELECT COUNT(*) FROM {TABLE} WHERE scope = %s AND bucket = %s"
# Distinct subjects a bounded scope counts per window; the hits of any more share one row
# (OVERFLOW). Subjects are the client's choice (an address, an admin username): a spray of
# 5,000 addresses wrote 5,000 rows a window, without bound. Legitimate failures come from a
# handful of clients; past the cap a new subject is not throttled by its own count until the
# next window (the alternative, throttling all of them as one, would lock every new client out).
MAX_SUBJECTS = 10_000
OVERFLOW = "*"
_EXPIRE = f"DELETE FROM {TABLE} WHERE scope = %s AND bucket < %s"
_expired_before: dict[str, int] = {}  # per expiring scope: this process deleted windows before


@dataclass(frozen=True)
class Window:
    start: int
    seconds: int

    @classmethod
    def current(cls, seconds: int, now: float | None = None) -> "Window":
        now = time.time() if now is None else now
        return cls(int(now // seconds) * seconds, seconds)

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds until this window ends (at least 1), for a Retry-After header."""
        now = time.time() if now is None else now
        return max(1, math.ceil(self.start + self.seconds - now))


def hit(
    scope: str, subject: str, window: Window, bounded: bool = False, expiring: bool = False
) -> int:
    """Count one hit and return the window's total including it. ``bounded``: the scope's
    subjects are the client's choice; past MAX_SUBJECTS in this window a new one is counted
    under OVERFLOW (the subjects already counted keep their own rows), and the scope's expired
    windows are deleted as new ones start. ``expiring``: only the latter (subjects that come
    and go, such as capture sessions, whose windows no one reads once they end)."""
    with connection.cursor() as cursor:
        if bounded:
            cursor.execute(_BUMP, [scope, subject, window.start])
            if (row := cursor.fetchone()) is not None:
                return int(row[0])
            _expire(cursor, scope, window)
            if _full(cursor, scope, window):
                subject = OVERFLOW
        elif expiring:
            _expire(cursor, scope, window)
        cursor.execute(_UPSERT, [scope, subject, window.start])
        return int(cursor.fetchone()[0])


def _expire(cursor: Any, scope: str, window: Window) -> None:
    """Delete this scope's windows before the previous one (the login throttle reads it), once
    per window per process: a bounded scope then holds at most two windows of MAX_SUBJECTS
    rows, and an expiring one two windows of its subjects, whether or not prune_counters is
    scheduled."""
    keep_from = window.start - window.seconds
    if _expired_before.get(scope) != keep_from:
        cursor.execute(_EXPIRE, [scope, keep_from])
        _expired_before[scope] = keep_from


def _full(cursor: Any, scope: str, window: Window) -> bool:
    """Whether this window of ``scope`` already holds its MAX_SUBJECTS (a count, only for a
    subject new to the window; once it overflowed, one indexed lookup)."""
    cursor.execute(_SELECT, [scope, OVERFLOW, window.start])
    if cursor.fetchone() is not None:
        return True
    cursor.execute(_SUBJECTS, [scope, window.start])
    return int(cursor.fetchone()[0]) >= MAX_SUBJECTS


def hits(scope: str, subject: str, window: Window) -> int:
    # Raw SQL: this runs before every authentication, and the ORM's query building cost more
    # than the indexed lookup itself.
    with connection.cursor() as cursor:
        cursor.execute(_SELECT, [scope, subject, window.start])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


KEEP_S = 24 * 3600  # longer than any throttle window


def prune_expired(now: float | None = None) -> int:
    """Delete the windows no throttle can still be counting in; how many were deleted."""
    return prune(KEEP_S, now)


def prune(older_than_s: int, now: float | None = None) -> int:
    """Delete windows that started more than ``older_than_s`` seconds ago."""
    now = time.time() if now is None else now
    deleted, _ = Counter.objects.filter(bucket__lt=now - older_than_s).delete()
    return deleted


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


def client_network(client: str) -> str:
    """What a per-client limit counts ``client`` (a :func:`client_ip`) under: an IPv4 address
    itself, the /64 of an IPv6 one. A home line or a cloud host is given a whole /64 and may
    send from any of its 2^64 addresses: counted per address, one client took a new one per
    attempt and never reached a limit. Text that is not an address stays as it is."""
    ip = _address(client)
    if ip is None:
        return client
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def _auth_window() -> Window:
    return Window.current(settings.AUTH_FAILURE_WINDOW_S)


def auth_blocked(client: str) -> Window | None:
    """The current window when ``client`` (its /64 for IPv6) already failed too often in it,
    else None."""
    limit = settings.AUTH_FAILURE_LIMIT
    if limit <= 0:
        return None
    window = _auth_window()
    if hits(AUTH_SCOPE, client_network(client), window) >= limit:
        return window
    return None


def auth_failed(client: str) -> None:
    if settings.AUTH_FAILURE_LIMIT > 0:
        hit(AUTH_SCOPE, client_network(client), _auth_window(), bounded=True)


def tenant_rate_exceeded(tenant_id: int, per_minute: int | None) -> Window | None:
    """Count this request against the tenant's per-minute rate; the window once it is over."""
    if per_minute is None:
        return None
    window = Window.current(60)
    if hit(RATE_SCOPE, str(tenant_id), window) > per_minute:
        return window
    return None
