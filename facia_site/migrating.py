"""``manage.py migrate`` one at a time per PostgreSQL database.

Instances sharing a database each migrate at start (bin/entrypoint serve, MIGRATE_ON_START=1,
the default): started together, all but one failed (3 at once on a fresh database: 2 exited 1,
"relation accounts_tenant already exists" and a duplicate pg_type key), and a data migration
could run twice. A session advisory lock makes the others wait, then find nothing to apply.
The lock goes with the connection, which the command closes when it ends. SQLite needs none:
its file is one host's, and `make serve` migrates one instance.
"""

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("facia.migrate")
LOCK_KEY = zlib.crc32(b"facia manage.py migrate")  # any fixed number that no one else takes


@contextmanager
def one_at_a_time(argv: list[str]) -> Iterator[None]:
    """Around ``manage.py ARGV``: hold the database's migration lock when it is ``migrate``."""
    if argv[1:2] == ["migrate"]:
        import django

        django.setup()
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                if not cursor.fetchone()[0]:
                    log.info("another process is migrating this database: waiting for it")
                    cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    yield
