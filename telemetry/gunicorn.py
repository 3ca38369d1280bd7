"""Helpers for facia_site/gunicorn.conf.py, importable before Django is set up."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir() -> Path:
    """The multiprocess metrics directory for this server, emptied of a previous run's files.

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when set, else a fresh temporary directory (so that two
    servers on one machine never share one).
    """
    configured = os.environ.get(METRICS_ENV)
    if not configured:
        path = Path(tempfile.mkdtemp(prefix="facia-metrics-"))
        os.environ[METRICS_ENV] = str(path)
        os.environ["FACIA_METRICS_DIR_OWNED"] = "1"
        return path
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path


def remove_metrics_dir(path: Path) -> None:
    if os.environ.get("FACIA_METRICS_DIR_OWNED") == "1":
        shutil.rmtree(path, ignore_errors=True)


def gunicorn_logconfig(level: str) -> dict[str, Any]:
    """gunicorn's own log lines (start, workers, errors) as JSON on stdout, at ``level``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "telemetry.logs.RequestIdFilter"}},
        "formatters": {"json": {"()": "telemetry.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "gunicorn.error": {"handlers": ["stdout"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }
