"""Gunicorn configuration: one engine per worker, compiled after fork, one thread each.

Why this shape (measurements in the docs' Performance page): the work per request is
CPU-bound and short (a few ms of inference), so one worker per available core, serving one
request at a time in one thread, keeps every core busy without oversubscription; more threads
per worker only add contention, fewer workers leave cores idle (the one exception: the
heaviest model runs on OpenVINO's thread beside the others, which costs ~3% more CPU and
shortens a lone request by ~20%: ml.engine.score). The worker class reads
requests with gevent first (facia_site/worker.py), so slow clients hold no worker.
"""

import functools
import os
import signal
import sys
from pathlib import Path
from typing import Any

from facia_site.env import (
    database_wait_within,
    env_bind_host,
    env_int,
    env_int_or_default,
    log_settings,
)
from facia_site.serve import STOP_SIGNALS, http_workers, no_core_dumps
from facia_site.startup import failing_as
from facia_site.vardir import prepare
from facia_site.worker import (
    LARGE_BODY_BYTES,
    LIBC,
    BufferingWorker,
    patch_io,
    release_memory,
    request_target,
)
from telemetry.gunicorn import (
    BOOT_FAILED_PREFIX,
    gunicorn_logconfig,
    hand_over_metrics_dir,
    prepare_metrics_dir,
    remove_metrics_dir,
)

# Pin native thread pools before numpy / OpenCV / OpenVINO are imported anywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")

# In the master, before any fork: the HTTP workers (hash_ids, selfies), the dirty arbiter and
# the task worker (calibration zips) inherit it, whatever started gunicorn (facia_site.serve,
# `make serve`, bench). No core file of request data, ever (facia_site.serve.no_core_dumps).
no_core_dumps()


# A setting that cannot be read stops the start with one record naming it (facia_site.startup);
# gunicorn itself printed "Failed to read config file" and a traceback, or (PORT=-1) a
# 30-line traceback of its bind.
with failing_as("gunicorn"):
    # Before any worker imports prometheus_client: one metrics directory per server, emptied.
    _METRICS_DIR = prepare_metrics_dir()
    # The var directory and key file, as manage.py does (settings only read them).
    prepare()
    # HOST=0.0.0.0 in a container; loopback by default, also when set blank: ":5001" is
    # gunicorn's every interface, the service open to the network where loopback was meant.
    bind = f"{env_bind_host('HOST')}:{env_int('PORT', 5001, 1, 65535)}"
    workers = http_workers()
    # Per worker: connections being read (each body up to 1 MB held; larger ones 2 at a
    # time), at most CONNECTIONS_PER_CLIENT of them from one address; when all are taken, the
    # one idle longest is closed for a new one (facia_site.worker.Admission).
    # At most 10,000 (10 GB of 1 MB bodies a worker): 10**20 overflows gevent's semaphore
    # in every new worker, which gunicorn would replace in a loop, never serving.
    worker_connections = env_int("GUNICORN_WORKER_CONNECTIONS", 100, 1, 10_000)
    timeout = env_int("GUNICORN_TIMEOUT", 60, minimum=1)
    _DATABASE_UNBOUNDED = database_wait_within(timeout)  # logged by on_starting
    _logs = log_settings()
    # The task worker (facia_site.taskworker): calibrations of admin uploads run there, never
    # in an HTTP worker (a 5,000-image zip pins one for 60 s until it is killed; the
    # 84-image dev zip takes 9 s). TASK_WORKERS=0 runs none: uploads then wait queued.
    # At most 64 (~190 MB each after a job): 10**20 would spawn them until memory ran out.
    dirty_workers = env_int("TASK_WORKERS", 1, 0, 64)
    # A safety net only, off by default (docs, Performance, Soak): leaks are fixed at their
    # cause. A recycled worker recompiles its models (~1.5 s) before it serves again.
    max_requests = env_int("GUNICORN_MAX_REQUESTS", 0)
    max_requests_jitter = env_int_or_default("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)
# Slow clients (docs, Performance): gevent reads each request, within deadlines, before
# Django sees it; Django still serves one request at a time per worker.
worker_class = "facia_site.worker.BufferingWorker"
# The whole request head must arrive within this many seconds (gevent times the parse).
keepalive = 5
graceful_timeout = 30
errorlog = "-"
# Django logs one record per request (with its request id), so no access log; gunicorn's own
# records in the same format (LOG_FORMAT: text on a terminal, else JSON).
accesslog = None
logconfig_dict = gunicorn_logconfig(_logs.level, _logs.format)
logger_class = "telemetry.gunicorn.Logger"
loglevel = _logs.level.lower()
# The control socket lives at one fixed path per user; several servers on a box would clash.
control_socket_disable = True
dirty_apps = ["facia_site.taskworker:TaskWorkerApp"]
dirty_timeout = 60  # one hand-off call (8 MB of an upload); jobs run on the worker's own thread
# gunicorn names its dirty arbiter's pid file after proc_name and, at start, kills the process a
# file of that name points to: one name per address, or servers on one box stop each other's.
proc_name = f"facia-{bind.replace(':', '-')}"

_M_ARENA_MAX = -8
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
TASK_WORKER_NAME = b"facia-tasks"


def pre_request(worker: Any, req: Any) -> None:
    """gunicorn's own hook: each request's method and path at DEBUG, as the access line names
    them (gunicorn's default writes the raw path, a hash_id sent in it included)."""
    worker.log.debug("%s", request_target(req))


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    """Large bodies' memory back to the OS (facia_site.worker.release_memory). BufferingWorker
    does it itself, after the response is sent; this covers a worker class given on the
    command line (``-k sync``)."""
    large = int(environ.get("CONTENT_LENGTH") or 0) > LARGE_BODY_BYTES
    if large and not isinstance(worker, BufferingWorker):
        release_memory()


# Marks that a worker of this master has failed to boot (the path names the master's pid).
_BOOT_FAILED = _METRICS_DIR / f"{BOOT_FAILED_PREFIX}{os.getpid()}"
_BOOT_FAILED.unlink(missing_ok=True)


def _boot_error_code(server: Any) -> int:
    """The boot-error code for the first worker that fails, 1 for the others: gunicorn's
    halt reaps the other workers too and, meeting a second boot error there, raised it out of
    the master, which then exited 1, not 3 (1 start in 4-6 with 2 workers failing together)."""
    try:
        os.close(os.open(_BOOT_FAILED, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return 1
    return int(server.WORKER_BOOT_ERROR)


def _exit_while_booting(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # nothing served yet: gunicorn logs "Worker exiting", the master reaps


# Until init_process installs a worker's own handlers it runs under the master's, inherited at
# fork, which only queue the signal in the worker's copy of the master's queue: a SIGTERM during
# the engine's load (~2 s, far longer on a cold compile cache) would be lost, the worker boot
# and serve, and a stopping master wait its whole graceful_timeout (30 s, past `docker stop`'s
# 10 s) to SIGKILL it. tests/system/test_stop_signals.py.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def post_fork(server: Any, worker: Any) -> None:
    """Compile and warm the engine in each worker, after fork (OpenVINO is not fork-safe)."""
    for stop in _STOP_SIGNALS:
        signal.signal(stop, _exit_while_booting)
    LIBC.mallopt(_M_ARENA_MAX, 2)  # one arena per thread that allocates is not needed here
    # Unready from its first moment (telemetry.metrics needs no Django): set after Django's
    # set-up, a replacement worker had no facia_worker_ready sample for ~1 s of each scrape.
    from telemetry.metrics import set_worker_ready

    set_worker_ready(False)
    if isinstance(worker, BufferingWorker):
        patch_io()  # before Django and psycopg are imported, so their sockets cooperate
    import django

    django.setup()
    from django.urls import get_resolver

    from liveness.runtime import get_engine, not_ready_reason

    # Import every view now: the URLconf (admin, DRF, schema views) costs ~0.4 s, which the
    # first request to each worker would otherwise pay.
    get_resolver().resolve("/status_check")
    try:
        get_engine()  # loads and warms this worker's engine
    except Exception:
        # Never a worker without a warm engine: it would answer 500s. A failed load repeats
        # (broken or missing model files, a bad MODEL_DIR), so a replaced worker would fail
        # again in a fork loop; exiting with the boot-error code makes the master stop and exit
        # non-zero instead, and the container restarts loudly (docs, Deployment, worker start-up).
        server.log.exception("engine load or warm-up failed in worker %s", worker.pid)
        sys.exit(_boot_error_code(server))
    not_ready_reason()  # sets this worker's readiness gauge (engine and database)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)


def on_starting(server: Any) -> None:
    """SIGUSR2 re-executes the master as it was started: ``python -m gunicorn`` (facia_site.serve,
    bench.gunicorn). gunicorn re-ran ``python .../gunicorn/__main__.py``, a script, whose folder
    then came first on sys.path: its ``http`` package hid the standard library's, the new
    master failed to read this file (an 11-line traceback, not a JSON record) and exited."""
    if Path(sys.argv[0]).name == "__main__.py":
        server.START_CTX["args"] = [sys.executable, "-m", "gunicorn", *sys.argv[1:]]
    if _DATABASE_UNBOUNDED:
        server.log.warning("%s", _DATABASE_UNBOUNDED)
    _say_sqlite_unwritable(server)


def _say_sqlite_unwritable(server: Any) -> None:
    """Once, at start: a SQLite database this user cannot write. Each worker's probe then
    logged only "database unusable: unable to open database file" and /status_check said 503
    "Database unavailable", neither naming the path (migrate, when it runs first, fails
    naming it: facia_site.startup)."""
    from facia_site.startup import sqlite_unwritable
    from telemetry.logs import database_target

    try:
        unwritable = sqlite_unwritable()
    except Exception:  # noqa: BLE001 (a setting unreadable: each worker's boot reports it, exit 3)
        return
    if unwritable:
        server.log.error(
            "database %s cannot be written: %s; no check can be recorded until it can",
            database_target(),
            unwritable,
        )


def pre_exec(server: Any) -> None:
    """SIGUSR2: the new master shares this one's metrics directory (telemetry.gunicorn)."""
    hand_over_metrics_dir(server, _METRICS_DIR)


def when_ready(server: Any) -> None:
    """The master's handlers are installed: the stop signals facia_site.serve blocked reach
    them now (one sent meanwhile, pending, is handled here: a graceful stop). The HTTP workers
    are forked after this, with them unblocked."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def on_dirty_starting(arbiter: Any) -> None:
    """The task worker's processes are named (their children inherit it): tools and tests tell
    them from HTTP workers by /proc/PID/comm. Its arbiter is forked before when_ready, with
    the stop signals still blocked (facia_site.serve): unblocked for it and its workers."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    LIBC.prctl(_PR_SET_NAME, TASK_WORKER_NAME, 0, 0, 0)
    arbiter.reload = functools.partial(_reload_task_workers, arbiter)  # its SIGHUP handler's


async def _reload_task_workers(arbiter: Any) -> None:
    """gunicorn 27.0.1's DirtyArbiter.reload stops ``list(arbiter.workers)[dirty_workers:]``,
    which in start order are the workers it has just spawned: on SIGHUP the new task worker
    is stopped as soon as it loads (0.3 to 0.9 s here); then either the arbiter's check for
    workers over its count (once a second) stops the old one too and a third starts (a reload
    of 1.1 to 2 s, 0.35 s of it with no task worker), or that check comes after the new one is
    reaped and the old one serves on, not reloaded. This spawns as gunicorn does, then stops
    the workers it found: the new one listens 0.3 s after SIGHUP, before the old one exits.
    tests/system/test_stop_signals.py."""
    arbiter.log.info("Reloading dirty workers")
    old = list(arbiter.workers)
    for _ in range(arbiter.cfg.dirty_workers):
        arbiter.spawn_worker()
    for pid in old:  # none reaped meanwhile: reaping waits for this coroutine to return
        arbiter.kill_worker(pid, signal.SIGTERM)


def dirty_worker_init(worker: Any) -> None:
    """The task worker ends when its parent, gunicorn's dirty arbiter, dies, and when told to
    stop while it is starting. The arbiter watches the master, but nothing else watches the
    arbiter: SIGKILLed, the master starts a new one, and an orphaned task worker, init's
    child, would poll the database every second for good, past the server's stop. SIGTERM is
    the dirty worker's own graceful stop. tests/system/test_stop_signals.py."""
    LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != worker.ppid:  # died before the line above
        os.kill(os.getpid(), signal.SIGTERM)
    # A SIGTERM while its apps load (Django's set-up, ~2 s) only sets worker.alive, which its
    # serve_forever never reads: it would serve on until the stopping master, after its 30 s
    # graceful_timeout, SIGKILLs the arbiter. Nothing has been served or queued yet.
    if not worker.alive:
        raise SystemExit(0)


def on_exit(server: Any) -> None:
    _BOOT_FAILED.unlink(missing_ok=True)
    remove_metrics_dir(server, _METRICS_DIR)
