"""Deleting a tenant with many check records from the admin, on a real gunicorn (one worker,
SQLite): the delete page's time and size, its "Yes, I'm sure" (the deletion), and the worker's
memory (VmRSS, and its peak VmHWM) before and after each. ``--tree`` serves another checkout
(``git archive main | tar -x -C /tmp/old``) with this checkout's models, for a before/after:

    python -m bench.tenant_delete [--rows 200000] [--sessions 20000] [--tree DIR] [--port 5790]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from bench.gunicorn import Served, http_workers, served
from bench.images import REPO

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
USER, PASSWORD = "bench", "bench-password"

# Run by ``manage.py shell -c`` in the served tree: a superuser, then a tenant with ROWS check
# records and SESSIONS capture sessions, inserted in batches as a bank's 90 days would leave
# them (no image: the records keep none).
FILL = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from accounts.models import HashId, Tenant
from capture.models import CaptureSession
from liveness.models import LivenessCheck
User.objects.create_superuser({user!r}, 'b@example.com', {password!r})
tenant = Tenant.objects.create(name='bank')
credential = HashId.issue(tenant).record
checks = (LivenessCheck(tenant=tenant, is_live=True, score=0.9, latency_ms=40.0)
          for _ in range({rows}))
LivenessCheck.objects.bulk_create(checks, batch_size=5000)
expires = timezone.now() + timedelta(hours=1)
sessions = (CaptureSession(tenant=tenant, credential=credential, token_digest='0' * 64,
                           expires_at=expires) for _ in range({sessions}))
CaptureSession.objects.bulk_create(sessions, batch_size=5000)
print(tenant.pk)
"""


def memory_mb(pid: int) -> tuple[float, float]:
    """The process's VmRSS and VmHWM (its peak), MB."""
    if not Path(f"/proc/{pid}").exists():  # killed (past GUNICORN_TIMEOUT)
        return 0.0, 0.0
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def logged_in(base: str) -> requests.Session:
    session = requests.Session()
    login = f"{base}/admin/login/"
    token = TOKEN.search(session.get(login, timeout=30).text).group(1)  # type: ignore[union-attr]  # no match: an error
    form = {"csrfmiddlewaretoken": token, "username": USER, "password": PASSWORD}
    session.post(login, data=form, headers={"Referer": login}, timeout=30)
    return session


def timed(
    label: str, worker: int, call: Callable[[], requests.Response]
) -> requests.Response | None:
    """``call()`` (a request); prints its status, seconds, size and the worker's memory."""
    before = memory_mb(worker)
    start = time.perf_counter()
    try:
        answer: requests.Response | None = call()
    except requests.RequestException as error:
        answer = None
        print(f"{label}: no answer ({type(error).__name__})")
    seconds = time.perf_counter() - start
    after = memory_mb(worker)
    if answer is not None:
        size = len(answer.content) / 1024
        print(f"{label}: HTTP {answer.status_code} in {seconds:.2f} s, {size:,.0f} KB")
    print(
        f"  worker VmRSS {before[0]:.0f} -> {after[0]:.0f} MB, "
        f"VmHWM {before[1]:.0f} -> {after[1]:.0f} MB"
    )
    return answer


def measure(server: Served, tenant: int) -> None:
    session = logged_in(server.base)
    (worker,) = http_workers(server.pid)
    url = f"{server.base}/admin/accounts/tenant/{tenant}/delete/"
    session.get(f"{server.base}/admin/", timeout=30)  # the admin's first page warms its imports
    page = timed("delete page (GET)", worker, lambda: session.get(url, timeout=600))
    token = TOKEN.search(page.text) if page is not None else None
    if token is None:
        print("no form to confirm: stopped")
        return
    form = {"csrfmiddlewaretoken": token.group(1), "post": "yes"}
    headers = {"Referer": url}
    timed(
        "Yes, I'm sure (POST: the deletion)",
        worker,
        lambda: session.post(url, data=form, headers=headers, timeout=600, allow_redirects=False),
    )
    left = server.manage(
        "shell",
        "-c",
        "from liveness.models import LivenessCheck; from accounts.models import Tenant; "
        f"print(Tenant.objects.filter(pk={tenant}).count(), LivenessCheck.objects.count())",
    )
    print(f"tenants, check records left: {left.strip().splitlines()[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5790)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tenant-delete-"))
    with served(args.tree.resolve(), work, args.port, workers=1) as server:
        start = time.perf_counter()
        fill = FILL.format(user=USER, password=PASSWORD, rows=args.rows, sessions=args.sessions)
        tenant = int(server.manage("shell", "-c", fill).strip().splitlines()[-1])
        print(
            f"{args.rows:,} check records and {args.sessions:,} capture sessions inserted in "
            f"{time.perf_counter() - start:.1f} s"
        )
        measure(server, tenant)


if __name__ == "__main__":
    main()
