"""The calibration upload through a real bin/entrypoint server: the admin request answers with
the job queued, the task worker gunicorn started beside the HTTP workers calibrates the dev
zip (read in place, zipped in memory), and the page shows the result; a zip of 5,000 entries
is refused by the request itself, from its directory."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import time
import uuid
import zipfile
from pathlib import Path

import pytest
import requests

from bench.zip_directory import empty_entries
from calibration import jobs
from tests.conftest import DEV_DATA
from tests.servers.entrypoint import Served
from tests.servers.gunicorn import gunicorn
from tests.servers.processes import STARTUP_S, children, manage, until

pytestmark = pytest.mark.system

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PASSWORD = "calibration-jobs-password"
SETUP = """
from django.contrib.auth.models import User
from accounts.models import Tenant
User.objects.create_superuser({user!r}, "ops@example.com", {password!r})
print(Tenant.objects.create(name={user!r}).pk)
"""
RESULT = """
import json
from calibration.models import CalibrationJob
from django_tasks_db.models import DBTaskResult
job = CalibrationJob.objects.get(tenant_id={tenant})
row = DBTaskResult.objects.get(id=job.task_id)
print(json.dumps([row.queue_name, row.worker_ids, row.status, job.pk, row.args_kwargs]))
"""


def dev_zip(copies: int = 1) -> tuple[bytes, int]:
    buffer, count = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("live", "spoof"):
            for path in sorted((DEV_DATA / label).iterdir()):
                for copy in range(copies):
                    archive.writestr(f"dev/{label}/{copy}-{path.name}", path.read_bytes())
                    count += 1
    return buffer.getvalue(), count


def logged_in(base: str, user: str) -> requests.Session:
    session = requests.Session()
    login = f"{base}/admin/login/"
    token = TOKEN.search(session.get(login, timeout=30).text).group(1)  # type: ignore[union-attr]  # no match: an error
    answer = session.post(
        login,
        data={"csrfmiddlewaretoken": token, "username": user, "password": PASSWORD},
        headers={"Referer": login},
        timeout=30,
    )
    assert "sessionid" in session.cookies, answer.status_code
    return session


def post_zip(session: requests.Session, url: str, data: bytes) -> requests.Response:
    token = TOKEN.search(session.get(url, timeout=30).text).group(1)  # type: ignore[union-attr]  # no match: an error
    return session.post(
        url,
        data={"csrfmiddlewaretoken": token},
        files={"archive": ("captures.zip", data, "application/zip")},
        headers={"Referer": url},
        allow_redirects=False,
        timeout=120,
    )


def test_dev_zip_is_calibrated_by_the_task_worker(served: Served) -> None:
    user = f"cal-{uuid.uuid4().hex[:8]}"
    tenant = served.manage("shell", "-c", SETUP.format(user=user, password=PASSWORD)).split()[-1]
    session = logged_in(served.base, user)
    url = f"{served.base}/admin/accounts/tenant/{tenant}/calibrate/"

    data, images = dev_zip()
    answer = post_zip(session, url, data)
    assert answer.status_code == 303 and answer.headers["Location"].endswith(
        f"/tenant/{tenant}/calibrate/"
    )
    deadline, page = time.monotonic() + 300, ""
    while time.monotonic() < deadline:  # the page reloads itself while the job is pending
        page = session.get(url, timeout=30).text
        if re.search(r'class="job-(done|failed)"', page):
            break
        time.sleep(0.5)
    assert 'class="job-done"' in page, page[-3000:]
    stored = re.search(
        r"Calibration #\d+ stored: threshold \d\.\d{4} \((\d+) live, (\d+) spoof, (\d+) refused\)",
        page,
    )
    assert stored and sum(int(n) for n in stored.groups()) == images
    queue, workers, status, job, args = json.loads(
        served.manage("shell", "-c", RESULT.format(tenant=tenant)).splitlines()[-1]
    )
    # Run by the server's task worker, on its own queue; the row holds the job's id and the
    # SHA-256 of the upload's token (jobs.digest), not the zip nor the token (24 characters).
    assert status == "SUCCESSFUL" and queue.startswith("worker-") and workers == [queue]
    assert args["kwargs"] == {} and args["args"][0] == job
    assert re.fullmatch("[0-9a-f]{64}", args["args"][1]), args

    answer = post_zip(session, url, empty_entries(5000))
    assert answer.status_code == 200 and "More than 2000 files in the zip" in answer.text


TRIGGER = """
from django.db import connection
connection.cursor().execute({sql!r})
"""
FAILING_INSERT = """CREATE TRIGGER full BEFORE INSERT ON accounts_calibrationjob
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"""


def test_uploads_whose_job_cannot_be_written_are_not_held(served: Served) -> None:
    """The zip is handed to the task worker before the job's row is written; when that write
    failed (a lock, an outage, a full disk) the task worker held the zip for UPLOAD_TTL_S (30
    min): after MAX_HELD (4) such uploads calibration was refused, and the form showed the
    task worker's refusal as a printed dict with its traceback and file paths."""
    user = f"cal-{uuid.uuid4().hex[:8]}"
    tenant = served.manage("shell", "-c", SETUP.format(user=user, password=PASSWORD)).split()[-1]
    session = logged_in(served.base, user)
    url = f"{served.base}/admin/accounts/tenant/{tenant}/calibrate/"
    data, _ = dev_zip()
    served.manage("shell", "-c", TRIGGER.format(sql=FAILING_INSERT))
    try:
        failed = [post_zip(session, url, data).status_code for _ in range(jobs.MAX_HELD)]
    finally:
        served.manage("shell", "-c", TRIGGER.format(sql="DROP TRIGGER full"))
    assert all(status >= 500 for status in failed), failed
    answer = post_zip(session, url, data)
    assert answer.status_code == 303, answer.text[-2000:]


def test_a_database_locked_mid_job_delays_its_progress_not_its_result(served: Served) -> None:
    """The job's progress write meets SQLite's write lock, held by another process past the
    busy timeout (3 s): it is skipped (DEBUG) and written again at the next beat, and the job
    ends stored. It ended the whole job "Failed unexpectedly"."""
    user = f"cal-{uuid.uuid4().hex[:8]}"
    tenant = served.manage("shell", "-c", SETUP.format(user=user, password=PASSWORD)).split()[-1]
    session = logged_in(served.base, user)
    url = f"{served.base}/admin/accounts/tenant/{tenant}/calibrate/"
    data, images = dev_zip(copies=2)
    assert post_zip(session, url, data).status_code == 303
    until(lambda: "Running: " in session.get(url, timeout=30).text, timeout=STARTUP_S)
    start = len(served.log_text().splitlines())
    lock = sqlite3.connect(served.env["DATABASE_URL"].removeprefix("sqlite:///"))
    lock.isolation_level = None
    lock.execute("BEGIN EXCLUSIVE")
    try:
        until(lambda: "progress not written" in _since(served, start), timeout=120)
    finally:
        lock.execute("COMMIT")
        lock.close()
    pending = r'class="job-(done|failed)"'
    until(lambda: re.search(pending, session.get(url, timeout=30).text), timeout=300)
    page = session.get(url, timeout=30).text
    assert 'class="job-done"' in page, page[-3000:]
    stored = re.search(
        r"Calibration #\d+ stored: .* \((\d+) live, (\d+) spoof, (\d+) refused\)", page
    )
    assert stored and sum(int(n) for n in stored.groups()) == images


def _since(served: Served, line: int) -> str:
    return "\n".join(served.log_text().splitlines()[line:])


def test_a_refused_upload_is_one_line_in_the_task_workers_log(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task worker holds at most MAX_HELD uploads; the next is refused with the form's
    sentence. gunicorn's dirty worker logged each refusal, the HandoffError raised, as an ERROR
    "Error executing ..." with its traceback; now it is one WARNING line. The uploads are
    handed off as the admin's upload hands its zip (jobs.hand_off), with no job to take them."""
    arbiter = re.search(r"Dirty arbiter listening on ([^\s\"]+)", served.log_text())
    assert arbiter, "no dirty arbiter in the log"
    monkeypatch.setenv("GUNICORN_DIRTY_SOCKET", arbiter[1])
    start = len(served.log_text().splitlines())
    held: list[tuple[str, str]] = []
    try:
        with pytest.raises(jobs.HandoffError) as refused:
            for _ in range(jobs.MAX_HELD + 1):  # fewer if another test's upload is held
                held.append(jobs.hand_off(b"a zip"))
    finally:
        for queue, token in held:
            jobs.release(queue, token)
    assert str(refused.value) == jobs.FULL.format(jobs.MAX_HELD)
    said = "calibration upload refused: " + jobs.FULL.format(jobs.MAX_HELD)
    until(lambda: said in _since(served, start) or "Error executing" in _since(served, start))
    logged = _since(served, start)
    assert "Traceback" not in logged and "Error executing" not in logged
    assert [line for line in logged.splitlines() if "refused" in line] == [
        line for line in logged.splitlines() if said in line
    ]
    assert logged.count(said) == 1


STATES = """
import json
from calibration import jobs
from calibration.models import CalibrationJob
jobs.STALLED_S = {stalled}
jobs_ = CalibrationJob.objects.filter(tenant_id={tenant}).order_by("pk")
print(json.dumps([[state.state, state.text] for state in map(jobs.describe_job, jobs_)]))
"""


def test_the_jobs_of_a_killed_task_worker_say_to_upload_again(tmp_path: Path) -> None:
    """A task worker killed (SIGKILL: the OOM killer) gets no graceful stop to fail its jobs,
    and no other worker takes its queue: its running job said "Running: 1 of 168 images." and
    the one queued behind it "Queued" until the hour or the half-hour their checks then
    allowed, the page reloading itself all along. Read here with a bound of 3 s, not the
    server's minute (calibration.jobs.STALLED_S)."""
    with gunicorn(tmp_path, 1) as server:
        user = f"cal-{uuid.uuid4().hex[:8]}"
        setup = SETUP.format(user=user, password=PASSWORD)
        tenant = manage(server.env, "shell", "-c", setup).split()[-1]
        session = logged_in(server.base, user)
        url = f"{server.base}/admin/accounts/tenant/{tenant}/calibrate/"
        data, _ = dev_zip(copies=2)
        assert post_zip(session, url, data).status_code == 303
        until(lambda: "Running: " in session.get(url, timeout=30).text, timeout=STARTUP_S)
        assert post_zip(session, url, data).status_code == 303  # queued behind it
        (arbiter,) = [pid for pid in children(server.process.pid) if pid not in server.workers()]
        (task_worker,) = children(arbiter)
        os.kill(task_worker, signal.SIGKILL)

        def states(stalled: float) -> list[list[str]]:
            script = STATES.format(stalled=stalled, tenant=tenant)
            return list(json.loads(manage(server.env, "shell", "-c", script).splitlines()[-1]))

        assert [state for state, _ in states(60)] == ["running", "queued"]
        until(lambda: [state for state, _ in states(3)] == ["failed", "failed"], timeout=120)
        for _, text in states(3):
            assert text == "The task worker stopped (no sign of it for 3 s): upload it again."
