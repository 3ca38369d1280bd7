"""Delete check records older than the retention period, and the daily 401/429 counts of the
days before it (the usage page shows both); guard prunes its expired throttle windows in the
same run (its own retention, ``guard.throttle.KEEP_S``), and the answers kept for
Idempotency-Keys older than IDEMPOTENCY_KEY_TTL_S (their own retention, whatever --days)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from guard import refusals, throttle
from liveness.models import MAX_RETENTION_DAYS, IdempotentAnswer, LivenessCheck


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
        deleted, _ = LivenessCheck.objects.filter(created_at__lt=cutoff).delete()
        days_counted = refusals.prune_before(cutoff.date())
        windows = throttle.prune_expired()
        keys = prune_idempotency_keys()
        self.stdout.write(
            f"deleted {deleted} check(s) older than {days} day(s), {days_counted} daily "
            f"refusal count(s); {windows} expired throttle window(s), {keys} expired "
            "idempotency key(s)"
        )


def prune_idempotency_keys() -> int:
    """Delete the Idempotency-Key answers past IDEMPOTENCY_KEY_TTL_S (already ignored)."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S)
    deleted, _ = IdempotentAnswer.objects.filter(created_at__lt=cutoff).delete()
    return deleted
