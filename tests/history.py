"""The admin's history made unwritable, to check that a change and its history entry are
written together: both or neither."""

import contextlib
from collections.abc import Iterator

from django.db import connection


@contextlib.contextmanager
def history_refused(when: str = "") -> Iterator[None]:
    """Every insert into the admin's history (django_admin_log) fails in the database itself
    (an SQLite trigger, dropped after): a history entry that cannot be written, as a process
    killed between the two writes would leave one. ``when``: an SQL condition on ``NEW`` (the
    row), to refuse only those entries (``NEW.change_message LIKE 'Issued%'``)."""
    condition = f" WHEN {when}" if when else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TRIGGER history_down BEFORE INSERT ON django_admin_log{condition} "
            "BEGIN SELECT RAISE(ABORT, 'history down'); END"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER history_down")
