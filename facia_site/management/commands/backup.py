"""``manage.py backup PATH``: the SQLite database, copied consistently while the service runs
(facia_site.backup); for PostgreSQL, what to run instead."""

import sqlite3
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from accounts.models import Tenant
from facia_site.backup import BackupError, backup_file, backup_sqlite
from liveness.models import LivenessCheck
from telemetry.logs import database_target

# Not wrapped: the service's image has no pg_dump (the database's own image has one of its
# server's version, which pg_dump must not be older than), and pg_dump's dump is already one
# snapshot taken while the service writes.
PG_DUMP = (
    "the database is PostgreSQL ({target}): back it up with pg_dump, which takes one "
    "consistent snapshot while the service runs, e.g. pg_dump --format=custom "
    "--file=facia.dump DATABASE_URL (docs: Backup, restore and upgrade)"
)


class Command(BaseCommand):
    help = (
        "Write a consistent copy of the SQLite database to PATH (a new file) while the service "
        "runs, and check it (PRAGMA integrity_check). For PostgreSQL, use pg_dump."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # A string: Path drops a trailing slash, which says PATH is a directory.
        parser.add_argument("path", help="the backup file to create (never replaced)")

    def handle(self, *args: Any, path: str, **options: Any) -> None:
        if connection.vendor != "sqlite":
            raise CommandError(PG_DUMP.format(target=database_target()))
        source = service_database()
        try:
            written = backup_sqlite(source, backup_file(path))
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"backup: {written}")


def service_database() -> sqlite3.Connection:
    """The connection to the service's SQLite database, once it is known to hold the service's
    tables. Opening a missing file creates an empty one: a mistyped FACIA_VAR_DIR or
    DATABASE_URL left one there, and the copy failed on a missing table."""
    database = Path(connection.settings_dict["NAME"])
    if not database.is_file():
        raise CommandError(
            f"no database at {database}: FACIA_VAR_DIR or DATABASE_URL names another place"
        )
    connection.ensure_connection()
    tables = set(connection.introspection.table_names())
    if Tenant._meta.db_table not in tables:
        raise CommandError(f"{database} is not migrated: run bin/entrypoint migrate first")
    # The tables the backup's line counts (facia_site.backup.counts): missing one, the copy
    # failed on "no such table", which named no cause.
    if LivenessCheck._meta.db_table not in tables:
        raise CommandError(f"{database} is not fully migrated: run bin/entrypoint migrate first")
    source = connection.connection
    assert isinstance(source, sqlite3.Connection)
    return source
