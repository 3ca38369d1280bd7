"""Atomic fixed-window counters: one upsert per hit, exact across processes.

``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` is a single statement on both SQLite (3.35+)
and PostgreSQL, so concurrent workers never lose a hit and never read a stale count.
"""

import math
import time
from dataclasses import dataclass

from django.db import connection

from guard.models import Counter

TABLE = Counter._meta.db_table
_UPSERT = (
    f"INSERT INTO {TABLE} (scope, subject, bucket, hits) VALUES (%s, %s, %s, 1) "
    f"ON CONFLICT (scope, subject, bucket) DO UPDATE SET hits = {TABLE}.hits + 1 "
    "RETURNING hits"
)
_SELECT = f"SELECT hits FROM {TABLE} WHERE scope = %s AND subject = %s AND bucket = %s"


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


def hit(scope: str, subject: str, window: Window) -> int:
    """Count one hit and return the window's total including it."""
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [scope, subject, window.start])
        return int(cursor.fetchone()[0])


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
