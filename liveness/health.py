"""Is this worker's database usable? A ``SELECT 1``, its success remembered for a second."""

import contextlib
import logging
import time

from django.db import DatabaseError, connection

log = logging.getLogger(__name__)
CACHE_S = 1.0
_ok_until = 0.0


def database_usable() -> bool:
    global _ok_until
    now = time.monotonic()
    if now < _ok_until:
        return True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        log.warning("database unusable: %s", exc)
        with contextlib.suppress(DatabaseError):
            connection.close()  # the next request opens a new one
        return False
    _ok_until = now + CACHE_S
    return True
