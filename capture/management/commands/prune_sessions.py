"""Delete capture sessions older than the retention period (like prune_checks), a batch at a
time, and take the face out of the head-turn judges of the sessions that expired with their
challenge running (capture.challenge.forget_expired_faces)."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone

from capture import challenge
from capture.models import CaptureSession
from liveness.models import MAX_RETENTION_DAYS

# Sessions per DELETE, each its own transaction, as prune_checks' BATCH: one DELETE of
# 1,200,000 old sessions held SQLite's write lock 20 s, and 4 of 417 selfies posted meanwhile
# got 503 (their busy timeout, DATABASE_TIMEOUT_S, is 3 s).
BATCH = 5_000


class Command(BaseCommand):
    help = (
        "Delete capture sessions created more than --days ago (LIVENESS_RETENTION_DAYS), "
        f"{BATCH:,} per transaction, and the face kept by the head-turn challenges of expired "
        "sessions."
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
        deleted = prune_sessions_before(timezone.now() - timedelta(days=days))
        forgotten = challenge.forget_expired_faces()
        self.stdout.write(
            f"deleted {deleted} capture session(s) older than {days} day(s); "
            f"{forgotten} expired challenge(s) stripped of the face's landmarks"
        )


def prune_sessions_before(cutoff: datetime) -> int:
    """Delete the sessions created before ``cutoff``, BATCH at a time, each batch one DELETE
    in its own transaction (one DELETE of them all held SQLite's write lock past the selfies'
    busy timeout). The sessions deleted."""
    old = CaptureSession.objects.filter(created_at__lt=cutoff)
    deleted = 0
    while True:
        batch, last = _next_batch(old)
        count, _ = batch.delete()
        deleted += count
        if last:
            return deleted


def _next_batch(old: QuerySet[CaptureSession]) -> tuple[QuerySet[CaptureSession], bool]:
    """The first BATCH of the ``old`` sessions in expires_at order (ties by id), as a range of
    the expires_at index up to the last of them, and whether they are the last. expires_at, not
    created_at: it has the index (created_at has none, so each DELETE bounded by created_at
    alone reads the whole table while it holds the write lock), and a session expires
    SESSION_TTL_S after it was created, so the old sessions come first in its order. Still
    bounded by ``old``'s created_at: only old sessions are deleted, whatever their expiry."""
    ends = old.order_by("expires_at", "pk").values_list("expires_at", "pk")
    end = ends[BATCH - 1 : BATCH].first()
    last = end is None
    if end is None:
        end = ends.reverse().first()
    if end is None:
        return old.none(), True
    at, pk = end
    return old.filter(expires_at__lte=at).exclude(expires_at=at, pk__gt=pk), last
