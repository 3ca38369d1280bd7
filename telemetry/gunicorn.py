"""Helpers for facia_site/gunicorn.conf.py, importable before Django is set up."""

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from telemetry.logs import logging_config

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


PREPARED_BY = "FACIA_METRICS_DIR_PREPARED_BY"


def prepare_metrics_dir() -> Path:
    """The multiprocess metrics directory for this server, emptied of a previous run's files.

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when set, else a fresh temporary directory (so that two
    servers on one machine never share one). gunicorn reads its config file again on SIGHUP,
    in the same master: that reload keeps the samples (emptying the directory took every
    counter back to what the new workers had counted, 28 verdicts served shown as 9).
    """
    configured = os.environ.get(METRICS_ENV)
    if configured and os.environ.get(PREPARED_BY) == f"{os.getpid()}:{configured}":
        return Path(configured)
    if not configured:
        path = Path(tempfile.mkdtemp(prefix="facia-metrics-"))
        os.environ[METRICS_ENV] = str(path)
        os.environ["FACIA_METRICS_DIR_OWNED"] = "1"
    else:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    os.environ[PREPARED_BY] = f"{os.getpid()}:{path}"
    return path


def remove_metrics_dir(path: Path) -> None:
    if os.environ.get("FACIA_METRICS_DIR_OWNED") == "1":
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
