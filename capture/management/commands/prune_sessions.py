"""Delete capture sessions older than the retention period (like prune_checks), and take the
face out of the head-turn judges of the sessions that expired with their challenge running
(capture.challenge.forget_expired_faces)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from capture import challenge
from capture.models import CaptureSession
from liveness.models import MAX_RETENTION_DAYS


class Command(BaseCommand):
    help = "Delete capture sessions created more than --days ago (LIVENESS_RETENTION_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        days = settings.LIVENESS_RETENTION_DAYS if options["days"] is None else options["days"]
        if not 0 <= days <= MAX_RETENTION_DAYS:
            raise CommandError(f"--days must be 0 to {MAX_RETENTION_DAYS}")
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = CaptureSession.objects.filter(created_at__lt=cutoff).delete()
        forgotten = challenge.forget_expired_faces()
        self.stdout.write(
            f"deleted {deleted} capture session(s) older than {days} day(s); "
            f"{forgotten} expired challenge(s) stripped of the face's landmarks"
        )
