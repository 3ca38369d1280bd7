"""Calibration of an admin upload as a background job (django-tasks, database backend).

No image is ever written to disk or the database, so the queued task's row holds metadata only
(the job's id and the SHA-256 of the upload's token, ``digest``); the zip itself travels in
memory, over gunicorn's dirty-worker socket, to the task worker process that will run the job
(facia_site.taskworker), which holds it in ``UPLOADS``, under that digest, until its task takes
it. The token itself, which appends to or drops the upload over that socket, is stored nowhere.
The task is queued on that worker's own queue, so no other worker (another pod's) can claim a
job whose bytes it does not have. A worker that stops loses what it held: a graceful stop
fails its unfinished jobs at once (``interrupt_jobs``); a killed one (SIGKILL, the OOM killer)
cannot, so a job whose worker has shown no sign of life for ``STALLED_S`` is shown failed,
saying to upload again (``describe_job``). A job whose tenant is deleted ends quietly: one log
line, nothing stored, its upload dropped.

Outside gunicorn (tests, ``runserver``) the upload is held in the web process itself, on the
``local`` queue, and ``run_local_jobs`` runs what is queued there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import OperationalError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch

from accounts import audit
from accounts.models import Tenant
from calibration.calibrate import (
    Basis,
    CalibrationError,
    fit,
    score,
    store,
    zip_group_kind,
    zip_images,
)
from calibration.models import Calibration, CalibrationJob
from liveness.runtime import load_engine
from ml import tenant_calibration
from ml.errors import ModelInstallError
from ml.evaluate import amount
from telemetry.logs import database_error

if TYPE_CHECKING:
    from gunicorn.dirty.errors import DirtyError

LOCAL_QUEUE = "local"
DIRTY_APP = "facia_site.taskworker:TaskWorkerApp"
CHUNK_BYTES = 8 * 1024 * 1024  # per dirty call: gunicorn caps one message at 64 MiB
UPLOAD_TTL_S = 30 * 60  # a held upload no task took by then is dropped
MAX_HELD = 4  # uploads one worker holds at once (each up to UPLOAD_MAX_BYTES)
PROGRESS_EVERY_S = 1.0  # a running job's count and beat are written this often
# A job whose task worker has shown no sign of life (a beat, a job taken or finished on its
# queue) for this long lost its worker. The longest step between two beats is the engine's load
# (1.5 s fast, 1.9 s thorough here) or one image (0.21 s at most over the dev set and the
# decode bombs; ~0.4 s the slowest seen); the fit of 2,000 scores takes 0.04 s. 60 s leaves
# a loaded machine 30 times that, and clocks of several hosts some seconds apart.
STALLED_S = 60.0

logger = logging.getLogger(__name__)


class HandoffError(Exception):
    """The task worker cannot take the upload now; the message is for the operator."""


class JobInterrupted(Exception):
    """The task worker stopped with the job queued or running: its upload is gone."""


class JobGone(Exception):
    """The job's row is gone: its tenant was deleted while it ran."""


def interrupt_jobs(queue: str) -> int:
    """Fail the jobs of ``queue`` (a task worker that is stopping) that have not finished."""
    from django_tasks_db.models import DBTaskResult

    stopped = 0
    pending = (TaskResultStatus.READY, TaskResultStatus.RUNNING)
    for row in DBTaskResult.objects.filter(queue_name=queue, status__in=pending):
        row.set_failed(JobInterrupted("the task worker stopped"))
        stopped += 1
    return stopped


@dataclass
class _Held:
    parts: list[bytes]
    expected: int
    deadline: float


FULL = (
    "The task worker already holds {} uploads waiting to be calibrated; try again when one "
    "has finished."
)
GREW = "The upload grew beyond its announced size."


def digest(token: str) -> str:
    """The key an upload is held under and its task takes it by: its token's SHA-256 (64 hex
    digits), all the task's row holds. The token appends to or drops the upload over the
    dirty socket; in the row, anyone reading the database (a backup) would hold that."""
    return hashlib.sha256(token.encode()).hexdigest()


class Uploads:
    """Uploads held in this process's memory until their task takes them: ``begin``,
    ``append`` and ``drop`` by token, ``take`` by its ``digest``."""

    # What the task worker may refuse, as the admin form says it (``refusal``).
    REFUSALS = frozenset((FULL.format(MAX_HELD), GREW))

    def __init__(self, max_held: int = MAX_HELD, ttl_s: float = UPLOAD_TTL_S) -> None:
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self.max_held, self.ttl_s = max_held, ttl_s

    def begin(self, size: int) -> str:
        with self._lock:
            now = time.monotonic()
            for key in [k for k, held in self._held.items() if held.deadline < now]:
                del self._held[key]
            if len(self._held) >= self.max_held:
                raise HandoffError(FULL.format(self.max_held))
            token = secrets.token_urlsafe(18)
            self._held[digest(token)] = _Held([], size, now + self.ttl_s)
            return token

    def append(self, token: str, chunk: bytes) -> int:
        key = digest(token)
        with self._lock:
            held = self._held[key]
            if sum(map(len, held.parts)) + len(chunk) > held.expected:
                del self._held[key]
                raise HandoffError(GREW)
            held.parts.append(chunk)
            return sum(map(len, held.parts))

    def take(self, key: str) -> bytes | None:
        """The complete upload held under ``key`` (its token's ``digest``), no longer held."""
        with self._lock:
            held = self._held.pop(key, None)
        if held is None or sum(map(len, held.parts)) != held.expected:
            return None
        return b"".join(held.parts)

    def drop(self, token: str) -> None:
        self.take(digest(token))

    def hold(self, data: bytes) -> str:
        token = self.begin(len(data))
        self.append(token, data)
        return token

    def __len__(self) -> int:
        return len(self._held)


UPLOADS = Uploads()


def hand_off(data: bytes) -> tuple[str, str]:
    """(queue, token): ``data`` held in the memory of the task worker that will run its job;
    its task is given the token's ``digest``, never the token."""
    if not os.environ.get("GUNICORN_DIRTY_SOCKET"):
        return LOCAL_QUEUE, UPLOADS.hold(data)
    from gunicorn.dirty import close_dirty_client, get_dirty_client
    from gunicorn.dirty.errors import DirtyError

    try:
        client = get_dirty_client(timeout=30.0)
        token = accepted(client.execute(DIRTY_APP, "begin", len(data)))
        view = memoryview(data)
        for start in range(0, len(data), CHUNK_BYTES):
            chunk = bytes(view[start : start + CHUNK_BYTES])
            accepted(client.execute(DIRTY_APP, "append", token, chunk))
        return str(client.execute(DIRTY_APP, "queue_name")), str(token)
    except DirtyError as exc:
        raise refusal(exc) from exc
    finally:
        # No connection left open: the task worker's arbiter logs an error for each one it
        # finds open when the server stops.
        close_dirty_client()


# The task worker's answer in place of a HandoffError (facia_site.taskworker): raised there,
# gunicorn's dirty worker logged it with its traceback.
REFUSED = "refused"


def refused(exc: HandoffError) -> dict[str, str]:
    return {REFUSED: str(exc)}


def accepted(answer: Any) -> Any:
    """A hand-off call's answer; HandoffError with the task worker's sentence (``refused``)."""
    if isinstance(answer, dict) and answer.get(REFUSED) in Uploads.REFUSALS:
        raise HandoffError(answer[REFUSED])
    return answer


UNAVAILABLE = "The task worker is not available; try again in a minute."


def refusal(exc: DirtyError) -> HandoffError:
    """The operator's sentence for the task worker's refusal ``exc``: the message of the
    HandoffError it raised (``exc.message``), else UNAVAILABLE. Never ``str(exc)``: that
    prints its details, the task worker's traceback and file paths, onto the admin's form."""
    from gunicorn.dirty.errors import DirtyAppError

    said = exc.message if isinstance(exc, DirtyAppError) else ""
    return HandoffError(said if said in Uploads.REFUSALS else UNAVAILABLE)


def release(queue: str, token: str) -> None:
    """Drop the upload held for a job that was not queued: held, it blocked one of the task
    worker's MAX_HELD slots and its memory (up to 64 MiB) for UPLOAD_TTL_S (30 min)."""
    if queue == LOCAL_QUEUE:
        UPLOADS.drop(token)
        return
    from gunicorn.dirty import close_dirty_client, get_dirty_client
    from gunicorn.dirty.errors import DirtyError

    try:
        get_dirty_client(timeout=30.0).execute(DIRTY_APP, "drop", token)
    except DirtyError as exc:
        logger.warning(
            "held upload not released (%s); it expires in %s s", exc.message, UPLOAD_TTL_S
        )
    finally:
        close_dirty_client()


def start_calibration(
    tenant_id: int,
    data: bytes,
    images: int,
    target_apcer: float | None,
    user: Any,
    equal_error: bool = False,
    shadow_days: int | None = None,
) -> CalibrationJob:
    """Hand ``data`` to a task worker and queue its calibration; returns at once."""
    queue, token = hand_off(data)
    try:
        # One transaction: a job row is never left without its task.
        with transaction.atomic():
            job = CalibrationJob.objects.create(
                tenant_id=tenant_id,
                created_by=user.get_username()[:150],
                user_id=user.pk,
                target_apcer=target_apcer,
                equal_error=equal_error,
                shadow_days=shadow_days,
                images=images,
            )
            result = calibrate_upload.using(queue_name=queue).enqueue(job.pk, digest(token))
            job.task_id = str(result.id)
            job.save(update_fields=["task_id"])
    except Exception:  # the database locked, down or full: no task will take the upload
        release(queue, token)
        raise
    return job


def beat(job_id: int, **fields: Any) -> bool:
    """Mark the job alive (``describe_job``), with ``fields``; JobGone when its row is gone.
    False when the database cannot take the write now (locked, down, full): a progress write
    is not the job's result, which only the final store decides. Raised, a SQLite lock held
    10 s mid-job ended the whole job "Failed unexpectedly"; the next beat writes it again,
    and a job silent for STALLED_S (60 s) is still shown stalled."""
    try:
        written = CalibrationJob.objects.filter(pk=job_id).update(beat_at=timezone.now(), **fields)
    except OperationalError as exc:
        logger.debug("calibration job #%s: progress not written (%s)", job_id, database_error(exc))
        return False
    if not written:
        raise JobGone
    return True


class _Progress:
    """Writes the job's count of started images, and its beat, at most once a second."""

    def __init__(self, job: CalibrationJob) -> None:
        self.job, self.last = job, 0.0

    def __call__(self, started: int) -> None:
        now = time.monotonic()
        if (now - self.last >= PROGRESS_EVERY_S or started == self.job.images) and beat(
            self.job.pk, started=started
        ):
            self.last = now


def _tenant_gone(job_id: int, when: str) -> dict[str, str]:
    """The end of a job whose tenant was deleted: one line, not a task's failure (an ERROR
    with its traceback); the job's row went with the tenant, so no page shows its result."""
    logger.info("calibration job #%s: its tenant was deleted %s; nothing stored", job_id, when)
    return {"error": "Its tenant was deleted."}


@task()
def calibrate_upload(job_id: int, key: str) -> dict[str, Any]:
    """Score the zip held under ``key`` (its token's ``digest``) with the tenant's engine
    settings, fit and store the calibration (active, or a shadow candidate). An operator's
    error (a bad zip, too few images) is the result's ``error``, not a crash."""
    job = CalibrationJob.objects.select_related("tenant").filter(pk=job_id).first()
    if job is None:
        UPLOADS.take(key)  # its slot freed now, not after UPLOAD_TTL_S
        return _tenant_gone(job_id, "before its job ran")
    try:
        return _calibrate(job, key)
    except (JobGone, Tenant.DoesNotExist):
        return _tenant_gone(job_id, "while its job ran")


def _calibrate(job: CalibrationJob, key: str) -> dict[str, Any]:
    data = UPLOADS.take(key)
    if data is None:
        return {
            "error": "The upload was lost before its job ran (the task worker restarted); "
            "upload it again."
        }
    tenant = job.tenant
    basis = Basis.of(tenant)  # what the job computes against; store checks it is still so
    beat(job.pk)
    try:
        # An engine of its own, dropped with the job: the idle task worker stays small
        # (a kept engine held its RSS at ~300 MB beside 2 HTTP workers of ~250 MB each).
        # Only the tenant's profile is compiled: DTN, for thorough alone, costs a fast tenant's
        # job its compile and ~40 ms an image otherwise.
        engine = load_engine([tenant.profile])
        beat(job.pk)
        scored = score(engine, tenant, zip_images(data), _Progress(job), zip_group_kind(data))
        del data
        target = None if job.target_apcer is None else job.target_apcer / 100
        result = fit(tenant, scored, target, job.equal_error)
        user = get_user_model().objects.filter(pk=job.user_id).first() if job.user_id else None
        stored = store(
            tenant,
            basis,
            scored,
            result,
            job.created_by,
            "admin upload",
            job.shadow_days,
            lambda said: audit.record(tenant, said, user),
        )
    except CalibrationError as exc:
        return {"error": str(exc)}
    except ModelInstallError:
        return {"error": "The models are not installed on this server."}
    CalibrationJob.objects.filter(pk=job.pk).update(started=F("images"))
    return _result(job, basis, stored, result)


def _result(
    job: CalibrationJob, basis: Basis, stored: Calibration, result: tenant_calibration.Result
) -> dict[str, Any]:
    """The job's result (store wrote the history entry with the calibration)."""
    return {
        "calibration": stored.pk,
        "threshold": stored.threshold,
        "live": stored.bona_fide,
        "spoof": stored.attacks,
        "refused": stored.refused,
        "shadow_days": job.shadow_days,
        "replaced": None if job.shadow_days is None else basis.shadow,
        "sentences": result.sentences,
    }


def run_local_jobs() -> int:
    """Run every job queued on the ``local`` queue, in this process, now; how many ran. (The
    worker's own loop would also close the database connections, which a test holds open.)"""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=[LOCAL_QUEUE],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"local-{os.getpid()}",
        excluded_queue_names=[],
    )
    ran = 0
    for row in DBTaskResult.objects.ready().filter(queue_name=LOCAL_QUEUE).order_by("enqueued_at"):
        row.claim(worker.worker_id)
        worker.run_task(row)
        ran += 1
    return ran


def stalled(queue: str, since: datetime) -> bool:
    """Whether the task worker of ``queue`` has shown no sign of life for ``STALLED_S`` (nor
    since ``since``, its job's creation): no job of its queue taken or finished, no beat of the
    one it runs. Its jobs wait on nothing then: a worker killed without its graceful stop
    (``interrupt_jobs``) leaves them queued or running for good, and each worker has a queue
    of its own, which no other worker takes from."""
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.filter(queue_name=queue)
    seen = rows.aggregate(Max("started_at"), Max("finished_at"))
    running = rows.filter(status=TaskResultStatus.RUNNING).values_list("id", flat=True)
    beats = CalibrationJob.objects.filter(task_id__in=[str(pk) for pk in running])
    seen |= beats.aggregate(Max("beat_at"))
    last: datetime = max([since, *(when for when in seen.values() if when is not None)])
    return (timezone.now() - last).total_seconds() > STALLED_S


@dataclass(frozen=True)
class JobState:
    job: CalibrationJob
    state: str  # queued, running, done, failed, lost
    text: str


def describe_job(job: CalibrationJob) -> JobState:
    """What the admin page says of a job: its state, progress and result."""
    try:
        result = calibrate_upload.get_result(job.task_id)
    except (TaskResultDoesNotExist, TaskResultMismatch, ValueError):
        return JobState(job, "lost", "Its task record is gone.")
    status = result.status
    pending = (TaskResultStatus.READY, TaskResultStatus.RUNNING)
    if status in pending and stalled(result.task.queue_name, job.created_at):
        said = f"The task worker stopped (no sign of it for {STALLED_S:.0f} s): upload it again."
        return JobState(job, "failed", said)
    if status == TaskResultStatus.READY:
        return JobState(job, "queued", f"Queued ({job.images} images).")
    if status == TaskResultStatus.RUNNING:
        return JobState(job, "running", f"Running: {job.started} of {job.images} images.")
    if status == TaskResultStatus.FAILED:
        errors = result.errors
        if errors and errors[-1].exception_class_path.endswith(JobInterrupted.__qualname__):
            return JobState(
                job, "failed", "The task worker restarted before the job ended; upload it again."
            )
        return JobState(job, "failed", "Failed unexpectedly; the server log has the details.")
    value = result.return_value or {}
    if "error" in value:
        return JobState(job, "failed", str(value["error"]))
    said = "".join(f" {s}" for s in value.get("sentences", []))
    shadow = value.get("shadow_days")
    how = f"set in shadow for {amount(shadow, 'day')}" if shadow else "stored"
    if value.get("replaced") is not None:
        how += f", replacing candidate #{value['replaced']} (set aside)"
    return JobState(
        job,
        "done",
        f"Calibration #{value['calibration']} {how}: threshold {value['threshold']:.4f} "
        f"({value['live']} live, {value['spoof']} spoof, {value['refused']} refused).{said}",
    )
