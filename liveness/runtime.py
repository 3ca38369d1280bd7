"""The per-process engine, loaded and warmed once (after fork under gunicorn), then shared;
and whether this worker is ready: engine warm, database answering and migrated for this code,
a check record writable.

The database probes are cheap and a success is remembered for ``CACHE_S`` seconds; each
probe's answer is the worker's verdict, which the gunicorn worker gives /status_check while
Django is busy with other requests (facia_site.worker). A database that does not answer (here
or in a request) is held for ``DOWN_HOLD_S``: meanwhile the worker answers 503 at once, then
the next request probes again: readiness is back within a second.

Each worker says once that the database is unusable or that checks cannot be recorded (a
WARNING), each repeat at DEBUG, and once that it is over (INFO, from the next probe that
succeeds): a WARNING per probe would be about one a second per worker for a whole outage.
"""

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Tenant
from liveness.models import LivenessCheck
from ml.engine import LivenessEngine
from ml.profiles import DEFAULT_PROFILE, PROFILES
from ml.quality import QualityThresholds
from telemetry.logs import database_error, database_target
from telemetry.metrics import set_worker_ready

log = logging.getLogger(__name__)


class EngineUnavailable(RuntimeError):
    """The engine could not be loaded or warmed (models missing or broken); cause chained."""


class EngineHolder:
    """Holds this process's engine once it is loaded *and* warmed, never a half-ready one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: LivenessEngine | None = None

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def get(self) -> LivenessEngine:
        """The warm engine, loaded on first use; raises EngineUnavailable when it cannot be
        (and tries again on the next call). Gunicorn workers load it in post_fork instead."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = _load_and_warm()
        return self._engine


def _load_and_warm() -> LivenessEngine:
    log.info("loading liveness engine from %s", settings.MODEL_DIR)
    try:
        engine = load_engine()
        engine.warm_up()  # runs every model and every YuNet shape once
    except Exception as exc:
        raise EngineUnavailable(f"liveness engine unavailable: {exc}") from exc
    log.info("liveness engine warmed")
    return engine


def profiles_in_use() -> set[str]:
    """The default profile and those the tenants use: their models are compiled at start; a
    profile first chosen later compiles its own models on its first request. Every profile
    when the database cannot say (down, not migrated, or not to be touched here, as in a test
    session's set-up)."""
    try:
        used = set(Tenant.objects.values_list("profile", flat=True).distinct())
    except Exception:  # noqa: BLE001 (any reason: the safe answer is every profile)
        log.warning("tenants' profiles unreadable; compiling every profile", exc_info=True)
        return set(PROFILES)
    return {DEFAULT_PROFILE} | (used & set(PROFILES))


def load_engine(profiles: Collection[str] | None = None) -> LivenessEngine:
    """A new engine with this deployment's model directory, threads and quality thresholds,
    compiling the models of ``profiles`` now (None: those the tenants use; any other model is
    compiled on its first use)."""
    thresholds = QualityThresholds.from_mapping(settings.LIVENESS_QUALITY)
    return LivenessEngine.load(
        settings.MODEL_DIR,
        threads=settings.ENGINE_THREADS,
        precision=settings.ENGINE_PRECISION,
        thresholds=thresholds,
        eager=profiles_in_use() if profiles is None else profiles,
    )


_holder = EngineHolder()


def get_engine() -> LivenessEngine:
    """This process's warm engine, loaded and warmed by the first call (gunicorn's post_fork,
    the test session's fixture, or else the first request); /status_check answers 200 once
    it is. EngineUnavailable when it cannot be."""
    return _holder.get()


def is_ready() -> bool:
    return _holder.ready


# /healthz, the kubelet's livenessProbe: this process and its engine, never the database. On
# /status_check, a PostgreSQL outage over 60 s failed 3 probes of period 20 s and restarted
# every pod at once into CrashLoopBackOff, which cures no database.
PROCESS_LIVE = "Process is live"


def process_problem() -> str | None:
    """Why this process cannot serve at all (its engine not warm yet), or None."""
    return None if is_ready() else STARTING


SERVICE_LIVE = "Service is live"  # /status_check's 200, the contract's (Facia's guide)
CACHE_S = 2.0
# A SQLite commit appends a few 4 kB pages to the WAL; below this the next ones may not fit.
SQLITE_MIN_FREE_BYTES = 1 << 20
STARTING = "Service is starting"
DB_DOWN = "Database unavailable"
NOT_MIGRATED = "Database not migrated: {} migration(s) not applied"
DB_FULL = "Cannot record checks (database or disk full, or read-only)"
DB_BUSY = "Database busy (locked or timed out)"
# Every wait on a hung database lasts DATABASE_TIMEOUT_S (3 s); one request at a time per
# worker, so unheld each queued request pays it again: 3 clients on 2 workers wait up to 9 s
# each, more clients longer. Held, only the request that probes waits; the others are answered
# at once.
DOWN_HOLD_S = 1.0
_ok_until = 0.0
_down_until = 0.0
# Set once every migration of this code is found applied: never asked again in this worker.
_migrated = False


@dataclass(frozen=True)
class Verdict:
    """The last probe of the database: when (time.monotonic()), and its reason (None: checks
    can be recorded). The gunicorn worker answers /status_check from it while Django is busy
    (facia_site.worker)."""

    at: float
    reason: str | None

    def age(self) -> float:
        return time.monotonic() - self.at


NO_VERDICT = Verdict(-math.inf, DB_DOWN)
_verdict = NO_VERDICT


class Condition:
    """A state of the database this worker logs once: a WARNING when it is first met, a DEBUG
    record each time it is met again, an INFO when it is over; through ``logger`` (this
    module's unless given)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.on = False
        self.log = logger or log

    def met(self, message: str, *args: object) -> None:
        self.log.log(logging.DEBUG if self.on else logging.WARNING, message, *args)
        self.on = True

    def over(self, message: str, *args: object) -> None:
        if self.on:
            self.on = False
            self.log.info(message, *args)


UNUSABLE = Condition()
UNRECORDABLE = Condition()
UNMIGRATED = Condition()
WAITED = Condition()
# Whether the probe run before this worker's current request (facia_site.worker) waited out
# DATABASE_TIMEOUT_S: that request is answered 503 at once (``probe_waited``), its wait spent.
# Its own insert waits for the same lock as long again: 5.02 s to its 503 behind a locked
# table, DATABASE_TIMEOUT_S being 3.
_probe_waited = False


def forget() -> None:
    """Drop the remembered success and failure, the verdict, the migrations found applied,
    and the conditions said (tests)."""
    global _ok_until, _down_until, _verdict, _migrated, _probe_waited
    _ok_until = _down_until = 0.0
    _verdict = NO_VERDICT
    _migrated = _probe_waited = False
    UNUSABLE.on = UNRECORDABLE.on = UNMIGRATED.on = WAITED.on = False


def _unanswered(exc: BaseException) -> bool:
    """The database did not answer at all (refused, lost, timed out): a psycopg error without
    a SQLSTATE. An error it reported (disk full, statement timeout) has one; SQLite's none."""
    return getattr(exc.__cause__, "sqlstate", "") is None


def database_failed(exc: BaseException) -> bool:
    """A request met ``exc``: the next /status_check probes again. When the database did not
    answer, the worker holds that for DOWN_HOLD_S and says so once per outage (True); an error
    it reported is the caller's to tell (False)."""
    global _ok_until, _verdict
    _ok_until = 0.0
    if not _unanswered(exc):
        return False
    _hold_down()
    _unusable(exc)
    _verdict = Verdict(time.monotonic(), DB_DOWN)
    return True


# A write the database refuses for want of room or write access: SQLite's SQLITE_READONLY (8)
# and SQLITE_FULL (13) (primary codes), PostgreSQL's disk_full and read_only_sql_transaction.
SQLITE_UNRECORDABLE = frozenset((8, 13))
POSTGRES_UNRECORDABLE = frozenset(("53100", "25006"))

# A statement that waited too long: SQLite's SQLITE_BUSY (5) and SQLITE_LOCKED (6) (primary
# codes; "database is locked" after the busy timeout), PostgreSQL's lock_not_available,
# query_canceled (statement_timeout: it fires first on a lock wait, both being
# DATABASE_TIMEOUT_S - 0.5 s) and deadlock_detected.
SQLITE_WAITED = frozenset((5, 6))
POSTGRES_WAITED = frozenset(("55P03", "57014", "40P01"))
# What each of those waits was, as the log says it.
WAITS = {
    "55P03": "lock_timeout",
    "57014": "statement_timeout",
    "40P01": "a deadlock",
    5: "SQLite's busy timeout",
    6: "SQLite's busy timeout",
}


def cannot_record(exc: BaseException) -> bool:
    """A request met ``exc``, a database that cannot take a write (disk full, read-only): the
    worker says so once (WARNING, then DEBUG, then INFO from the probe that finds it over), as
    for an outage (True). Each request logged two ERROR lines instead, ours and Django's."""
    global _verdict
    if not _coded(exc, SQLITE_UNRECORDABLE, POSTGRES_UNRECORDABLE):
        return False
    UNRECORDABLE.met("a check could not be recorded: %s", database_error(exc))
    _verdict = Verdict(time.monotonic(), DB_FULL)
    return True


def _coded(exc: BaseException, sqlite_codes: frozenset[int], sqlstates: frozenset[str]) -> bool:
    """Whether the database error ``exc`` is one of SQLite's ``sqlite_codes`` (primary codes)
    or PostgreSQL's ``sqlstates``."""
    cause = exc.__cause__
    code = getattr(cause, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in sqlite_codes) or getattr(
        cause, "sqlstate", None
    ) in sqlstates


def _hold_down() -> None:
    global _down_until
    _down_until = time.monotonic() + DOWN_HOLD_S


def database_held_down() -> bool:
    return time.monotonic() < _down_until


def _unusable(exc: BaseException) -> None:
    UNUSABLE.met("database %s unusable: %s", database_target(), database_error(exc))


def migrations_missing() -> int:
    """How many of this code's migrations the database has not applied (those ``migrate``
    would apply; later ones it has, as after a rollback to this code, do not count: the
    expand/contract rule keeps them harmless). Asked until none is missing, then never again
    in this worker: it builds the migration graph, so a probe while some are missing costs 15-18
    times a ready probe (tenant read and check row), the first ~160 times (it imports the
    migration files), one run of 30 probes each on SQLite."""
    global _migrated
    if _migrated:
        return 0
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    missing = sum(1 for _, backwards in plan if not backwards)
    if missing:
        UNMIGRATED.met(
            "database %s: %d migration(s) of this release not applied; run migrate",
            database_target(),
            missing,
        )
    else:
        _migrated = True
        UNMIGRATED.over("database %s: every migration of this release applied", database_target())
    return missing


def migrated() -> bool:
    """Whether this worker has found every migration of its release applied (then it never
    asks again)."""
    return _migrated


def _database_answers() -> tuple[bool, int, int | None]:
    """Whether the database answers: its migrations (a partly migrated database answers SELECT
    1 and a read of the tenants too, while new columns are missing), then a read of the
    tenants; how many migrations are missing, and a tenant's id for _check_row_fits (None: no
    tenant, or not read)."""
    try:
        missing = migrations_missing()
        tenant_id = (
            None if missing else Tenant.objects.order_by().values_list("pk", flat=True).first()
        )
    except DatabaseError as exc:
        _unusable(exc)
        with contextlib.suppress(DatabaseError):
            connection.close()  # the next request opens a new one
        return False, 0, None
    UNUSABLE.over("database %s usable again", database_target())
    return True, missing, tenant_id


def _sqlite_disk_has_room() -> bool:
    """SQLite only: in WAL mode a rolled-back write touches no file, so ENOSPC needs statvfs."""
    if connection.vendor != "sqlite":
        return True
    folder = os.path.dirname(os.path.abspath(settings.DATABASES["default"]["NAME"]))
    stats = os.statvfs(folder)
    if stats.f_bavail * stats.f_frsize >= SQLITE_MIN_FREE_BYTES:
        return True
    UNRECORDABLE.met("a check could not be recorded: under 1 MiB free in %s", folder)
    return False


def _check_row_fits(tenant_id: int | None) -> str | None:
    """Insert a check row as a real check does, then roll it back: fails where that insert
    would (SQLITE_FULL, PostgreSQL "could not extend file", a read-only database); DB_BUSY
    when it waited past DATABASE_TIMEOUT_S for another writer's lock, the disk not full."""
    if tenant_id is None:
        return None  # no tenant: no check can be authenticated, nothing to record
    try:
        with transaction.atomic():
            LivenessCheck.objects.create(tenant_id=tenant_id, latency_ms=0.0, request_id="probe")
            transaction.set_rollback(True)
    except DatabaseError as exc:
        if _coded(exc, SQLITE_WAITED, POSTGRES_WAITED):
            _waited(exc)
            return DB_BUSY
        UNRECORDABLE.met("a check could not be recorded: %s", database_error(exc))
        return DB_FULL
    return None


def _waited(exc: DatabaseError) -> None:
    """Say that a check's insert waited (for a lock: the probe's insert has no other wait)
    until DATABASE_TIMEOUT_S's bound ended it, and which bound: the database is busy, not
    unable to record a check."""
    code = getattr(exc.__cause__, "sqlite_errorcode", None)
    kind = WAITS.get(getattr(exc.__cause__, "sqlstate", None) or (code or 0) & 0xFF, "a timeout")
    WAITED.met(
        "database busy: a check's insert waited for a lock until %s ended it "
        "(DATABASE_TIMEOUT_S=%s): %s",
        kind,
        settings.DATABASE_TIMEOUT_S,
        database_error(exc),
    )


def database_problem() -> str | None:
    """Why checks cannot be recorded now, or None; a probe's answer is the worker's verdict."""
    global _ok_until, _verdict
    now = time.monotonic()
    if now < _ok_until:
        return None
    reason = _probe()
    _ok_until = now + CACHE_S if reason is None else 0.0
    _verdict = Verdict(now, reason)
    return reason


def _probe() -> str | None:
    if database_held_down():
        return DB_DOWN
    answers, missing, tenant_id = _database_answers()
    if not answers:
        _hold_down()
        return DB_DOWN
    if missing:
        return NOT_MIGRATED.format(missing)
    if not _sqlite_disk_has_room():
        return DB_FULL
    if reason := _check_row_fits(tenant_id):
        return reason
    UNRECORDABLE.over("checks can be recorded again")
    WAITED.over("a check's insert waits no more")
    return None


def last_verdict() -> Verdict:
    return _verdict


def verdict_due() -> bool:
    """Whether the worker should probe again before its next request: its verdict is
    CACHE_S old (a success is remembered that long)."""
    return _verdict.age() >= CACHE_S


def probe_before_request() -> None:
    """The probe before a request, when the verdict is due (facia_site.worker); notes whether
    it waited out DATABASE_TIMEOUT_S (``probe_waited``)."""
    global _probe_waited
    _probe_waited = False
    if process_problem() is None and migrated() and verdict_due():
        close_old_connections()  # as at the start of a request: this is before one
        _probe_waited = not_ready_reason() == DB_BUSY


def probe_waited() -> bool:
    """Whether the probe before the current request waited out DATABASE_TIMEOUT_S: the request
    is to answer 503 at once, as its one wait on the database is spent."""
    return _probe_waited


def not_ready_reason() -> str | None:
    """Why this worker cannot serve a check, or None; also sets its readiness gauge."""
    reason = STARTING if not is_ready() else database_problem()
    set_worker_ready(reason is None)
    return reason
