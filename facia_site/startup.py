"""How a command that fails says so (manage.py, and so every step of bin/entrypoint): one log
record, the cause first ("cannot connect to database postgresql://facia@db:5432/facia:
connection failed: ... Connection refused"), its traceback inside it (``exc_info``), in the
service's log format. Python's own report is the traceback alone, the cause on its last
line, which bin/entrypoint would log as one JSON record per line (87 for a bad DATABASE_URL).
"""

import contextlib
import logging
import logging.config
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from django.core.exceptions import ImproperlyConfigured

from telemetry.logs import database_error, database_target, logging_config, one_line

log = logging.getLogger("facia.startup")
# Where Django opens every connection (BaseDatabaseWrapper.connect).
CONNECT_FILE = ("django", "db", "backends", "base", "base.py")
UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for it
FULL_BELOW_BYTES = 1 << 20  # as liveness.runtime.SQLITE_MIN_FREE_BYTES: a few commits' room


def disk_note() -> str:
    """For SQLite on a (nearly) full disk, how little room is left: SQLite itself says only
    "disk I/O error" when it cannot create its -shm file."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return ""
    try:
        free = shutil.disk_usage(Path(db["NAME"]).parent).free
    except OSError:
        return ""
    return f" (the disk holding it has {free} bytes free)" if free < FULL_BELOW_BYTES else ""


def sqlite_unwritable() -> str:
    """For SQLite, why this user cannot write the database ("" when it can, or for
    PostgreSQL): a read-only directory or file was only "unable to open database file" or
    "attempt to write a readonly database", which path unsaid. The directory counts: SQLite
    writes its -wal and -shm files beside the database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return ""
    path = Path(db["NAME"]).absolute()
    for kind, target in (("directory", path.parent), ("file", path)):
        if kind == "file" and not target.exists():
            break
        if not target.exists():
            return f"its {kind} {target} does not exist"
        if os.statvfs(target).f_flag & os.ST_RDONLY:
            return f"its {kind} {target} is on a read-only file system"
        if not os.access(target, os.W_OK):
            return f"its {kind} {target} is not writable by this user (uid {os.getuid()})"
    return ""


def sqlite_note() -> str:
    """What SQLite leaves unsaid: the path it cannot write, else how full its disk is."""
    unwritable = sqlite_unwritable()
    return f" ({unwritable})" if unwritable else disk_note()


def cannot_connect(exc: BaseException) -> bool:
    """An OperationalError raised while opening the connection (inside Django's connect()). A
    command closes its connections before its error reaches us, so whether one is open said
    nothing: a locked SQLite file was "cannot connect to database ...: database is locked"."""
    from django.db import OperationalError

    if not isinstance(exc, OperationalError):
        return False
    frame = exc.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        if code.co_name == "connect" and Path(code.co_filename).parts[-5:] == CONNECT_FILE:
            return True
        frame = frame.tb_next
    return False


def missing_table(exc: BaseException) -> str | None:
    """The table a query found missing (an unmigrated database), or None. A command closes
    its connections before its error reaches us, so SQLite's "no such table" looked like a
    failed connection: "cannot connect to database ...: no such table: accounts_tenant"."""
    from django.db import DatabaseError

    if not isinstance(exc, DatabaseError):
        return None
    if found := re.match(r"no such table: (\S+)", str(exc)):  # SQLite
        return found[1]
    if getattr(exc.__cause__, "sqlstate", None) == UNDEFINED_TABLE:  # PostgreSQL
        found = re.match(r'relation "([^"]+)" does not exist', str(exc))
        return found[1] if found else "?"
    return None


def cause(exc: BaseException) -> str:
    from django.db import DatabaseError

    if table := missing_table(exc):
        return (
            f"database {database_target()} has no table {table}: it is not migrated; run "
            "`manage.py migrate` (`bin/entrypoint migrate`) first"
        )
    if cannot_connect(exc):
        return (
            f"cannot connect to database {database_target()}: {database_error(exc)}{sqlite_note()}"
        )
    if isinstance(exc, DatabaseError):  # e.g. a corrupt SQLite file: say which database
        what = f"{type(exc).__name__}: {database_error(exc)}"
        return f"database {database_target()}: {what}{sqlite_note()}"
    return f"{type(exc).__name__}: {one_line(exc)}"


def _explained(exc: BaseException) -> bool:
    """The one line says all: a setting, a database not migrated, a path not writable."""
    from django.db import DatabaseError

    if isinstance(exc, ImproperlyConfigured) or missing_table(exc):
        return True
    return isinstance(exc, DatabaseError) and bool(sqlite_unwritable())


def ensure_logging() -> None:
    """Django configures logging once its settings load; a failure may come before that."""
    if logging.getLogger().handlers:
        return
    from facia_site.env import log_settings, log_stream

    try:
        settings = log_settings()
        config = logging_config(settings.format, settings.level, settings.stream)
    except Exception:  # the log settings themselves are what failed: JSON, as by default
        config = logging_config("json", "INFO", log_stream())
    logging.config.dictConfig(config)


@contextmanager
def reported(argv: list[str]) -> Iterator[None]:
    """Run a manage.py command; an exception becomes one ERROR record and exit status 1."""
    with failing_as(" ".join(["manage.py", *argv[1:2]])):
        yield


@contextmanager
def failing_as(command: str) -> Iterator[None]:
    """An exception becomes one ERROR record, "COMMAND: cause", and exit status 1. A setting
    the operator got wrong (ImproperlyConfigured) is that line alone: its traceback (~50
    lines of Django's settings import on a terminal) only hid the line naming the variable;
    so for a database not migrated yet, whose line says what to run, and for a SQLite path
    not writable, which it names."""
    try:
        yield
    except Exception as exc:
        ensure_logging()
        trace = None if _explained(exc) else exc
        log.error("%s: %s", command, cause(exc), exc_info=trace)
        sys.exit(1)
    except KeyboardInterrupt:
        # Ctrl-C (SIGINT): the command stops, as asked, its open transaction rolled back
        # (psycopg cancels a running query). One line says so: Python's own report would be a
        # traceback of wherever the signal came (20 lines for a migrate waiting for the
        # migration lock), which bin/entrypoint logs one JSON record a line.
        with contextlib.suppress(ValueError):  # a second Ctrl-C meanwhile: end at once
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        ensure_logging()
        log.error("%s: interrupted (SIGINT, Ctrl-C): stopped before it finished", command)
        die_of_sigint()


def die_of_sigint() -> NoReturn:
    """End killed by SIGINT, as its default action ends a process. A shell running the command
    in a loop (`for t in a b; do manage.py x; done`) stops on Ctrl-C only when its child died
    of the signal: an exit status, even 130, says the child handled it, and bash goes on to
    the next command (https://www.cons.org/cracauer/sigint.html). A container's PID 1 is not
    killed by a signal it has no handler for: it exits 130 (128 + SIGINT), as a shell reports
    the death."""
    for stream in (sys.stdout, sys.stderr):  # what the command wrote: a signal skips the flush
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(ValueError):  # not the main thread: the exit below
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.raise_signal(signal.SIGINT)
    sys.exit(128 + signal.SIGINT)
