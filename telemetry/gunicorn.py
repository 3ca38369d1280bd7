"""Helpers for facia_site/gunicorn.conf.py, importable before Django is set up."""

import atexit
import contextlib
import fcntl
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.http.errors import NoMoreData

from telemetry.logs import logging_config

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


PREPARED_BY = "FACIA_METRICS_DIR_PREPARED_BY"
OWNED = "FACIA_METRICS_DIR_OWNED"
# Set by a master for the master it re-executes on SIGUSR2 (hand_over_metrics_dir).
HANDED_OVER = "FACIA_METRICS_DIR_HANDED_OVER"


def prepare_metrics_dir() -> Path:
    """The multiprocess metrics directory for this server, emptied of a previous run's files.

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when set, else a fresh temporary directory (so that two
    servers on one machine never share one). gunicorn reads its config file again on SIGHUP,
    in the same master: that reload keeps the samples (emptying the directory would take every
    counter back to what the new workers had counted, 28 verdicts served shown as 9). A master
    re-executed on SIGUSR2 takes over its predecessor's directory as it is: both generations'
    workers write there while they overlap, and every scrape sums them all (a new master
    emptying an operator's directory under the old workers scrapes 3 verdicts as 0, and one
    making a temporary directory of its own, 3 as 0 once the old master stops).
    """
    configured = os.environ.get(METRICS_ENV)
    if configured and os.environ.get(PREPARED_BY) == f"{os.getpid()}:{configured}":
        return Path(configured)
    if handed_over := os.environ.get(HANDED_OVER):
        path = Path(handed_over)
        os.environ[METRICS_ENV] = handed_over
        _share(path, empty=False)
    elif not configured:
        path = Path(tempfile.mkdtemp(prefix="facia-metrics-"))
        os.environ[METRICS_ENV] = str(path)
        os.environ[OWNED] = "1"
        # A master that cannot bind ("Connection in use") exits before gunicorn calls on_exit:
        # each such start left an empty facia-metrics-* directory behind.
        atexit.register(_remove_if_empty, path, os.getpid())
    else:
        path = Path(configured)
        try:
            path.mkdir(parents=True, exist_ok=True)
            _share(path, empty=True)
        except OSError as exc:  # /proc/x, a file, read-only: named, not a 20-line traceback
            raise ImproperlyConfigured(f"cannot set up {path} ({METRICS_ENV}): {exc}") from exc
    os.environ[PREPARED_BY] = f"{os.getpid()}:{path}"
    return path


# Each master holds a shared lock on this file of its operator's directory for as long as it
# runs (its fd: ``_held``). A start takes the directory only when it can lock it alone: a
# second `bin/entrypoint serve` beside a running one, on its port (a mistyped `docker exec`),
# emptied it before failing to bind ("Connection in use"), and the running server's /metrics
# then had 0 samples, readiness gauges included, until its workers were replaced; on another
# port, both servers' scrapes summed both servers' samples.
LOCK_NAME = ".facia-metrics.lock"
_held: list[int] = []
# gunicorn.conf.py's marker that a worker of the master with this pid failed to boot.
BOOT_FAILED_PREFIX = "boot-failed-"
# prometheus_client's own files (values.MultiProcessValue): "<kind>_<pid>.db", a gauge's kind
# naming its multiprocess mode (gauge_livesum_12.db).
_SAMPLE_FILE = re.compile(
    r"(counter|histogram|summary|gauge_(live)?(all|min|max|sum|mostrecent))_\d+\.db"
)
_OURS = re.compile(rf"{re.escape(LOCK_NAME)}|{BOOT_FAILED_PREFIX}\d+|{_SAMPLE_FILE.pattern}")


def _share(path: Path, empty: bool) -> None:
    """Lock ``path`` shared for this master's life; first, when ``empty``, lock it alone and
    delete a previous run's sample files. Starting beside a server that holds it, or in a
    directory that holds any other file, is refused: ``PROMETHEUS_MULTIPROC_DIR`` pointed at
    the database's directory (/data) had every ``*.db`` there deleted, the SQLite database and
    its tenants with them. Directories count as nobody's files: they are kept, and allowed."""
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if empty:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ImproperlyConfigured(
                f"{METRICS_ENV}={path} is in use by another running server: each server needs "
                "a directory of its own (a shared one sums both servers' samples)"
            ) from None
        # Only plain files of ours are deleted, and directories never count as foreign: a
        # volume's root (its lost+found) is a directory of the server's own.
        entries = list(path.iterdir())
        ours = [
            e for e in entries if e.is_file() and not e.is_symlink() and _OURS.fullmatch(e.name)
        ]
        foreign = sorted(
            e.name for e in entries if e not in ours and not (e.is_dir() and not e.is_symlink())
        )
        if foreign:
            (path / LOCK_NAME).unlink()  # nothing of ours left in another's directory
            os.close(fd)
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if foreign[5:] else ""
            )
            raise ImproperlyConfigured(
                f"{METRICS_ENV}={path} holds files that are not metric samples ({shown}): "
                "it is emptied at start, so give the server a directory of its own"
            )
        for stale in ours:
            if stale.name != LOCK_NAME:
                stale.unlink()
    fcntl.flock(fd, fcntl.LOCK_SH)  # an exclusive lock becomes shared: the next start sees it
    _held.append(fd)


def _remove_if_empty(path: Path, master: int) -> None:
    """At the exit of the master that made ``path``: removed if nothing was ever written there
    (a master that served leaves it to on_exit, which knows whether a successor shares it)."""
    if os.getpid() == master:  # a worker's exit runs the atexit handlers it inherited
        with contextlib.suppress(OSError):  # not empty: on_exit's (remove_metrics_dir)
            path.rmdir()


def hand_over_metrics_dir(server: Any, path: Path) -> None:
    """In the child a SIGUSR2 forks (gunicorn's pre_exec): the master it is about to exec
    shares ``path``, and owns it if this one did. gunicorn execs it with the environment this
    master started with (``cfg.env_orig``), read before this file set the directory."""
    server.cfg.env_orig[HANDED_OVER] = str(path)
    server.cfg.env_orig[METRICS_ENV] = str(path)
    if os.environ.get(OWNED) == "1":
        server.cfg.env_orig[OWNED] = "1"


def other_generation_alive(server: Any) -> bool:
    """Whether another master shares this one's metrics directory: the successor it forked on
    SIGUSR2 (reaped: ``reexec_pid`` back to 0), or, in that successor, the old master it has not
    yet been promoted from (its parent)."""
    return bool(server.reexec_pid) or (
        bool(server.master_pid) and server.master_pid == os.getppid()
    )


def remove_metrics_dir(server: Any, path: Path) -> None:
    """A temporary directory of our own is removed when its last master exits."""
    if os.environ.get(OWNED) == "1" and not other_generation_alive(server):
        shutil.rmtree(path, ignore_errors=True)


def gunicorn_logconfig(level: str, log_format: str = "json") -> dict[str, Any]:
    """gunicorn's own records (start, workers, errors) on stdout as Django's, at ``level``."""
    base = logging_config(log_format, level)
    return {
        **base,
        "loggers": {
            "gunicorn.error": {"handlers": ["stdout"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


class Logger(GunicornLogger):
    """gunicorn's logger, but the access line's fields (the date, every request and response
    header) are gathered only when gunicorn.access would write the line: it never does here
    (CRITICAL, no handler; Django logs each request), and gathering them cost 17.6 us per
    request (0.2 us with this check; micro-benchmark, interleaved)."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """As gunicorn's, but a client that closed mid-request ("Ignored premature client
        disconnection. %s") is logged by the exception's class: its text quotes what the
        parser held of the request, a header up to 8,190 bytes (a hash_id in ``X-Hash-Id``)
        or a chunked body's last line."""
        shown = [type(arg).__name__ if isinstance(arg, NoMoreData) else arg for arg in args]
        super().debug(msg, *shown, **kwargs)
