"""Gunicorn configuration: one engine per worker, compiled after fork, one thread each."""

import os
from typing import Any

from ops.gunicorn import gunicorn_logconfig, json_logs, prepare_metrics_dir, remove_metrics_dir

# Pin native thread pools before numpy / OpenCV / OpenVINO are imported anywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
# Before any worker imports prometheus_client: one metrics directory per server, emptied now.
_METRICS_DIR = prepare_metrics_dir()

# HOST=0.0.0.0 in a container; loopback by default.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5001')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.environ.get("WORKERS") or os.cpu_count() or 1)
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
errorlog = "-"
if json_logs():
    # Django logs one JSON line per request (with its request id); gunicorn's own lines too.
    accesslog = None
    logconfig_dict = gunicorn_logconfig()
else:
    accesslog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# The control socket lives at one fixed path per user; several servers on a box would clash.
control_socket_disable = True


def post_fork(server: Any, worker: Any) -> None:
    """Compile and warm the engine in each worker, after fork (OpenVINO is not fork-safe)."""
    import django

    django.setup()
    from liveness.runtime import warm

    try:
        warm()
    except Exception:
        # The worker still serves /status_check (503) and retries the load on first request.
        server.log.exception("engine warm-up failed in worker %s", worker.pid)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)


def on_exit(server: Any) -> None:
    remove_metrics_dir(_METRICS_DIR)
