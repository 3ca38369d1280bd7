"""Delete expired throttle windows (``prune_checks`` runs this too)."""

from typing import Any

from django.core.management.base import BaseCommand

from guard import throttle


class Command(BaseCommand):
    help = "Delete throttle windows older than any throttle still counts in."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"deleted {throttle.prune_expired()} expired throttle window(s)")
