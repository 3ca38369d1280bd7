"""The calibration upload through a real bin/entrypoint server: the admin request answers with
the job queued, the task worker gunicorn started beside the HTTP workers calibrates the dev
zip (read in place, zipped in memory), and the page shows the result; a zip of 5,000 entries
is refused by the request itself, from its directory."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
import zipfile

import pytest
import requests

from bench.zip_directory import empty_entries
from tests.conftest import DEV_DATA
from tests.servers.entrypoint import Served

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
print(json.dumps([row.queue_name, row.worker_ids, row.status, len(str(row.args_kwargs))]))
"""


def dev_zip() -> tuple[bytes, int]:
    buffer, count = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("live", "spoof"):
            for path in sorted((DEV_DATA / label).iterdir()):
                archive.writestr(f"dev/{label}/{path.name}", path.read_bytes())
                count += 1
    return buffer.getvalue(), count


def logged_in(served: Served, user: str) -> requests.Session:
    session = requests.Session()
    login = f"{served.base}/admin/login/"
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
    session = logged_in(served, user)
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
    queue, workers, status, args = json.loads(
        served.manage("shell", "-c", RESULT.format(tenant=tenant)).splitlines()[-1]
    )
    # Run by the server's task worker, on its own queue; the row holds ids, not the zip.
    assert status == "SUCCESSFUL" and queue.startswith("worker-") and workers == [queue]
    assert args < 200

    answer = post_zip(session, url, empty_entries(5000))
    assert answer.status_code == 200 and "More than 2000 files in the zip" in answer.text
