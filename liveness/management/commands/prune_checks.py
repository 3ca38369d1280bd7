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
from liveness.models import MAX_RETENTION_DAYS, CheckQuerySet, IdempotentAnswer, LivenessCheck

# Check records per DELETE, each its own transaction (prune_checks_before). Deleting 750,000
# old records on SQLite (2 cores at load 11), each transaction held the write lock 0.20 s
# (median; 0.59 s at worst) at 5,000, 0.43 s (0.83 s) at 10,000, against the selfies' 3 s busy
# timeout; a client posting selfies throughout the prune got 273 answers, all 201, the slowest
# 1.35 s (one DELETE: 22.7 s, 4 of 114 answers 503).
BATCH = 5_000


class Command(BaseCommand):
    help = (
        "Delete liveness check records older than --days (LIVENESS_RETENTION_DAYS), "
        f"{BATCH:,} per "
        "transaction, with the capture sessions and Idempotency-Key answers that copy them, and "
        "the daily refusal counts of those days; also the expired throttle windows, the "
        "Idempotency-Key answers past IDEMPOTENCY_KEY_TTL_S and the expired admin sessions, "
        "whatever --days."
    )

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
        deleted, copies = prune_checks_before(cutoff)
        days_counted = refusals.prune_before(cutoff.date())
        windows = throttle.prune_expired()
        keys = prune_idempotency_keys()
        sessions = clear_expired_sessions()
        self.stdout.write(
            f"deleted {deleted} check(s) older than {days} day(s) and {copies} row(s) copying "
            f"them (capture sessions, Idempotency-Key answers), {days_counted} daily "
            f"refusal count(s); {windows} expired throttle window(s), {keys} expired "
            f"idempotency key(s), {sessions} expired admin session(s)"
        )


def prune_checks_before(cutoff: datetime) -> tuple[int, int]:
    """Delete the check records created before ``cutoff``, oldest first, BATCH at a time, each
    batch with the rows copying it (CheckQuerySet.delete) in its own transaction: one DELETE of
    every old record held SQLite's write lock past the selfies' 3 s busy timeout (750,000
    records: one 503 among 150-400 answers), and would pass PostgreSQL's statement_timeout
    (DATABASE_TIMEOUT_S) alike. The records deleted, and the rows copying them."""
    old = LivenessCheck.objects.filter(created_at__lt=cutoff)
    label = LivenessCheck._meta.label
    deleted = copies = 0
    while True:
        batch, last = _next_batch(old)
        total, per_model = batch.delete()
        deleted += per_model.get(label, 0)
        copies += total - per_model.get(label, 0)
        if last:
            return deleted, copies


def _next_batch(old: CheckQuerySet) -> tuple[CheckQuerySet, bool]:
    """The BATCH oldest of the ``old`` records, as a range of the created_at index up to the
    BATCH-th one (ties by id), and whether they are the last. A range, not their ids: a list
    of 5,000 ids costs Django 0.04 s to compile into each statement (three a batch, with the
    copies'), where the records' own DELETE takes 0.04 s."""
    ends = old.order_by("created_at", "pk").values_list("created_at", "pk")
    end = ends[BATCH - 1 : BATCH].first()
    if end is None:
        return old, True
    at, pk = end
    return LivenessCheck.objects.filter(created_at__lte=at).exclude(created_at=at, pk__gt=pk), False


def clear_expired_sessions() -> int:
    """The configured session engine's ``clear_expired`` (what Django's clearsessions runs):
    the admin sessions past their expiry; guard.sessions' says how many."""
    return int(import_module(settings.SESSION_ENGINE).SessionStore.clear_expired() or 0)


def prune_idempotency_keys() -> int:
    """Delete the Idempotency-Key answers past IDEMPOTENCY_KEY_TTL_S (already ignored)."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S)
    deleted, _ = IdempotentAnswer.objects.filter(created_at__lt=cutoff).delete()
    return deleted
