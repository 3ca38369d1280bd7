"""``manage.py migrate``, Django's, each migration applied and recorded before a SIGINT or
SIGTERM takes effect (facia_site.migrating.HeldSignals): between the two, one left the
database unmigratable."""

from typing import Any

from django.core.management.commands import migrate

from facia_site.migrating import HeldSignals

STARTS = ("apply_start", "unapply_start")
ENDS = ("apply_success", "unapply_success")


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> str | None:
        self.held = HeldSignals()
        try:
            return super().handle(*args, **options)
        finally:
            # A migration that failed never reaches its end: its failure is what is reported.
            self.held.pending = None
            self.held.release()

    def migration_progress_callback(
        self, action: str, migration: Any = None, fake: bool = False
    ) -> None:
        if action in STARTS:
            self.held.hold(f"{migration.app_label}.{migration.name}")
        super().migration_progress_callback(action, migration, fake)
        if action in ENDS:
            self.held.release()
