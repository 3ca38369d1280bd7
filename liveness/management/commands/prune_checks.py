"""Delete check records older than the retention period, and the daily 401/429 counts of the
days before it (the usage page shows both); guard prunes its expired throttle windows in the
same run (its own retention, ``guard.throttle.KEEP_S``), the answers kept for Idempotency-Keys
older than IDEMPOTENCY_KEY_TTL_S and the admin sessions past their expiry (their own
retentions, whatever --days)."""

from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from guard import refusals, throttle
from liveness.models import MAX_RETENTION_DAYS, IdempotentAnswer, LivenessCheck

# Check records per DELETE, each its own transaction (prune_checks_before). Deleting 750,000
# old records on SQLite (2 cores at load 11), each transaction held the write lock 0.20 s
# (median; 0.59 s at worst) at 5,000, 0.43 s (0.83 s) at 10,000, against the selfies' 3 s busy
# timeout; a client posting selfies throughout the prune got 273 answers, all 201, the slowest
# 1.35 s (one DELETE: 22.7 s, 4 of 114 answers 503).
BATCH = 5_000


class Command(BaseCommand):
    help = "Delete liveness check records older than --days (LIVENESS_RETENTION_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"keep this many days (default {settings.LIVENESS_RETENTION_DAYS})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = settings.LIVENESS_RETENTION_DAYS if options["days"] is None else options["days"]
        if not 0 <= days <= MAX_RETENTION_DAYS:
            raise CommandError(f"--days must be 0 to {MAX_RETENTION_DAYS}")
        cutoff = timezone.now() - timedelta(days=days)
        deleted = prune_checks_before(cutoff)
        days_counted = refusals.prune_before(cutoff.date())
        windows = throttle.prune_expired()
        keys = prune_idempotency_keys()
        sessions = clear_expired_sessions()
        self.stdout.write(
            f"deleted {deleted} check(s) older than {days} day(s), {days_counted} daily "
            f"refusal count(s); {windows} expired throttle window(s), {keys} expired "
            f"idempotency key(s), {sessions} expired admin session(s)"
        )


def prune_checks_before(cutoff: datetime) -> int:
    """Delete the check records created before ``cutoff``, oldest first, BATCH at a time by
    primary key, each DELETE its own transaction: one DELETE of every old record held SQLite's
    write lock past the selfies' 3 s busy timeout (750,000 records: one 503 among 150-400
    answers), and would pass PostgreSQL's statement_timeout (DATABASE_TIMEOUT_S) alike."""
    old = LivenessCheck.objects.filter(created_at__lt=cutoff).order_by("created_at")
    deleted = 0
    while batch := list(old.values_list("pk", flat=True)[:BATCH]):
        count, _ = LivenessCheck.objects.filter(pk__in=batch).delete()
        deleted += count
        if len(batch) < BATCH:
            break
    return deleted


def clear_expired_sessions() -> int:
    """The configured session engine's ``clear_expired`` (what Django's clearsessions runs):
    the admin sessions past their expiry; guard.sessions' says how many."""
    return int(import_module(settings.SESSION_ENGINE).SessionStore.clear_expired() or 0)


def prune_idempotency_keys() -> int:
    """Delete the Idempotency-Key answers past IDEMPOTENCY_KEY_TTL_S (already ignored)."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S)
    deleted, _ = IdempotentAnswer.objects.filter(created_at__lt=cutoff).delete()
    return deleted
