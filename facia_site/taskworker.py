"""The task worker: gunicorn's dirty worker (``dirty_apps`` in facia_site/gunicorn.conf.py), so
whatever starts gunicorn (``make serve``, bin/entrypoint, the image, compose, Kubernetes)
starts it beside the HTTP workers, restarts it when it dies and stops it with them.

It runs django-tasks' database worker on a thread, on a queue of its own, and takes the
uploads of the jobs it will run over gunicorn's dirty socket, in memory (calibration.jobs).
Imports are deferred: gunicorn loads this module before Django is set up.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import secrets
import threading
import time
from typing import Any

from gunicorn.dirty.app import DirtyApp

logger = logging.getLogger(__name__)
LIBC = ctypes.CDLL("libc.so.6")
POLL_S = 1.0  # the queue is read this often when idle (one indexed query)
# While the database is down it is tried this often, and said so once (outage and return).
RETRY_S = 5.0


def release_memory(**kwargs: Any) -> None:
    """A finished job's zip, images and engine back to the OS (glibc keeps freed memory)."""
    gc.collect()
    LIBC.malloc_trim(0)


class TaskWorkerApp(DirtyApp):
    def init(self) -> None:
        # Django's set-up here takes ~2 s, in which a SIGTERM is only remembered
        # (facia_site/gunicorn.conf.py, dirty_worker_init): this line marks its start.
        logger.info("task worker loading")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
        import django

        django.setup()
        from django_tasks_db.management.commands.db_worker import Worker

        self.queue = f"worker-{secrets.token_hex(8)}"
        self.worker = Worker(
            queue_names=[self.queue],
            interval=POLL_S,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=self.queue,
            excluded_queue_names=[],
        )
        from django_tasks.signals import task_finished

        task_finished.connect(release_memory, weak=False)
        self.thread = threading.Thread(target=self._run, name="task-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        """The worker's loop; a database outage pauses it (``_await_database``), any other
        failure ends one pass, not the worker."""
        from django.db import Error

        while self.worker.running:
            try:
                self.worker.run()
            except Error as exc:
                self._await_database(exc)
            except Exception:
                logger.exception("task worker loop failed; retrying in %s s", RETRY_S)
                time.sleep(RETRY_S)

    def _await_database(self, exc: BaseException) -> None:
        """One WARNING when the database stops answering, one INFO when it answers again,
        each failed try at DEBUG: every pass logged a full traceback (~40 lines) every 5 s
        for as long as the database was down. The message names the error's class and the
        database without its password (telemetry.logs.database_target)."""
        from django.db import Error, connection

        from telemetry.logs import database_error, database_target

        target = database_target()
        logger.warning(
            "task worker: database %s unavailable (%s: %s); jobs wait, trying every %s s",
            target,
            type(exc).__name__,
            database_error(exc),
            RETRY_S,
        )
        while self.worker.running:
            time.sleep(RETRY_S)
            try:
                connection.close()  # the broken one; ensure_connection opens a new one
                connection.ensure_connection()
            except Error as still:
                logger.debug("task worker: database still unavailable (%s)", type(still).__name__)
                continue
            logger.info("task worker: database %s available again; taking jobs", target)
            return

    def begin(self, size: int) -> str:
        from calibration.jobs import UPLOADS

        return UPLOADS.begin(size)

    def append(self, token: str, chunk: bytes) -> int:
        from calibration.jobs import UPLOADS

        return UPLOADS.append(token, chunk)

    def drop(self, token: str) -> None:
        """Release an upload whose job could not be queued (calibration.jobs.release)."""
        from calibration.jobs import UPLOADS

        UPLOADS.drop(token)

    def queue_name(self) -> str:
        return self.queue

    def close(self) -> None:
        """Stop taking jobs; the jobs this worker still holds uploads for fail with a message
        to upload again (a running one is cut short with the process)."""
        self.worker.running = False
        self.thread.join(timeout=1)
        from django.db import Error

        from calibration.jobs import interrupt_jobs
        from telemetry.logs import database_error, database_target

        try:
            interrupt_jobs(self.queue)
        except Error as exc:
            # A stop during an outage: one line, not the traceback (~50 lines) of a connection
            # refused. Its jobs, if any, show failed once it has been silent for STALLED_S
            # (calibration.jobs.stalled).
            logger.warning(
                "task worker stopping: database %s unavailable (%s: %s); its unfinished jobs "
                "are not marked interrupted",
                database_target(),
                type(exc).__name__,
                database_error(exc),
            )
        except Exception:
            logger.exception("could not mark this task worker's pending jobs as interrupted")

    def __call__(self, action: str, *args: Any, **kwargs: Any) -> Any:
        if action not in ("begin", "append", "drop", "queue_name"):
            raise ValueError(f"Unknown action: {action}")
        from calibration.jobs import HandoffError, refused

        try:
            return getattr(self, action)(*args, **kwargs)
        except HandoffError as exc:
            # An upload refused (MAX_HELD held, or grown past its size) is the operator's to
            # hear, on the form: raised, gunicorn's dirty worker logged it as an ERROR with
            # its traceback (26 lines per refused upload).
            logger.warning("calibration upload refused: %s", exc)
            return refused(exc)
