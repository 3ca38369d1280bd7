"""``manage.py migrate`` one at a time per database.

Instances sharing a database each migrate at start (bin/entrypoint serve, MIGRATE_ON_START=1,
the default): started together, all but one failed (3 at once on a fresh PostgreSQL database:
2 exited 1, "relation accounts_tenant already exists" and a duplicate pg_type key; 2 at once on
a fresh SQLite file: one exited 1 in 9 rounds of 9, "table ... already exists", "duplicate
column name", "Unable to create the django_migrations table"), and a data migration could run
twice. A lock makes the others wait, then find nothing to apply: on PostgreSQL a session
advisory lock, which goes with the connection (the command closes it when it ends); on SQLite
an flock on a file beside the database's, which goes when the process ends.

A migration is applied and then recorded (Django's executor records one whose schema editor
left deferred SQL, liveness 0001's foreign key for one, after its transaction has committed,
and a non-atomic one, liveness 0007, after its index is built): SIGINT or SIGTERM between the
two left it applied but not recorded, and every later migrate failed ("relation
liveness_livenesscheck already exists"). ``HeldSignals`` holds them over that span
(facia_site/management/commands/migrate.py).
"""

import fcntl
import logging
import os
import signal
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

log = logging.getLogger("facia.migrate")
LOCK_KEY = zlib.crc32(b"facia manage.py migrate")  # any fixed number that no one else takes
WAITING = "another process is migrating this database: waiting for it"
TRY_MS = 100  # one try at the PostgreSQL lock; well under deadlock_timeout's default 1 s
LOCK_NOT_AVAILABLE = "55P03"
STOPPING = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], Any] | int | None  # what signal.signal returns
RECOVERY = "docs/operator/deployment.md#a-migration-applied-but-not-recorded"


@contextmanager
def one_at_a_time(argv: list[str]) -> Iterator[None]:
    """Around ``manage.py ARGV``: hold the database's migration lock when it is ``migrate``."""
    with ExitStack() as stack:
        if argv[1:2] == ["migrate"]:
            import django

            django.setup()
            from django.db import connection

            if connection.vendor == "postgresql":
                _advisory_lock(connection)
            elif connection.vendor == "sqlite":
                handle = _lock_file(str(connection.settings_dict["NAME"]))
                if handle is not None:
                    stack.enter_context(handle)
                    _flock(handle)
        yield


def _advisory_lock(connection: "BaseDatabaseWrapper") -> None:
    """Wait in short tries, not one statement: a migration building an index CONCURRENTLY
    waits for every older snapshot, a waiter's included, while the waiter waits for its lock
    (one blocking pg_advisory_lock: "deadlock detected" after 1.0 s, the index build aborted).
    Each try gives up before PostgreSQL's deadlock check (deadlock_timeout, 1 s by default)."""
    from django.db import OperationalError

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        if cursor.fetchone()[0]:
            return
        log.info(WAITING)
        cursor.execute(f"SET lock_timeout = '{TRY_MS}ms'")
        while True:
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
                break
            except OperationalError as exc:  # lock_not_available: try again
                if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                    raise
        cursor.execute("RESET lock_timeout")


def _lock_file(database: str) -> IO[str] | None:
    """``DATABASE.migrate-lock``, opened; None where it cannot be created (a read-only or
    missing directory): SQLite writes its journal in that directory too, so no migration can
    apply there, and migrate itself says why (or that there is nothing to apply). None for an
    in-memory database: it is the process's own."""
    if database == ":memory:" or "mode=memory" in database:
        return None
    try:
        # 0600 like the database beside it (the lock holds nothing, but var/ holds only
        # owner-only files, which the deployment tests check).
        fd = os.open(f"{database}.migrate-lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return None
    return os.fdopen(fd, "a")


def _flock(handle: IO[str]) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info(WAITING)
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes


class HeldSignals:
    """SIGINT and SIGTERM, held from a migration's start until it is recorded (``hold`` ...
    ``release``): the first one that comes meanwhile takes effect at ``release``, as it would
    have at once (KeyboardInterrupt, manage.py's SystemExit), so the migration ends recorded.
    A second one meanwhile ends the process at once, as the signal's default action does: the
    way out of a migration that takes too long, whose recovery the message names."""

    def __init__(self) -> None:
        self.saved: dict[int, Handler] = {}
        self.pending: int | None = None
        self.migration = ""

    def hold(self, migration: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python runs handlers in the main thread only: nothing to hold here
        self.migration = migration
        for signum in STOPPING:
            # One ignored (sh starts a background command with SIGINT ignored) stays so.
            if signum not in self.saved and signal.getsignal(signum) != signal.SIG_IGN:
                self.saved[signum] = signal.signal(signum, self.defer)

    def defer(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.pending is not None:
            _say(
                f"manage.py migrate: second {name}: stopping at once; {self.migration} may be "
                f"applied but not recorded: see {RECOVERY}\n"
            )
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.pending = signum
        _say(
            f"manage.py migrate: {name}: stopping once {self.migration} is applied and "
            "recorded (a second signal stops at once)\n"
        )

    def release(self) -> None:
        """Put the handlers back; then the signal that came meanwhile, if one did."""
        saved, self.saved = self.saved, {}
        for signum, handler in saved.items():
            if handler is not None:  # None: set outside Python, which cannot put it back
                signal.signal(signum, handler)
        pending, self.pending = self.pending, None
        if pending is not None:
            signal.raise_signal(pending)


def _say(text: str) -> None:
    """One line on stderr from a signal handler: os.write, as the handler may have come in the
    middle of a write on sys.stderr (a buffered stream raises on such a reentrant call)."""
    with suppress(OSError):
        os.write(2, text.encode(errors="replace"))
