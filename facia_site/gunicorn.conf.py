"""Gunicorn configuration: one engine per worker, compiled after fork, one thread each."""

import os
from typing import Any

# Pin native thread pools before numpy / OpenCV / OpenVINO are imported anywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")

bind = f"127.0.0.1:{os.environ.get('PORT', '5001')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.environ.get("WORKERS") or os.cpu_count() or 1)
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
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
