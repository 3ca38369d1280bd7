"""The console's pages that count check records by day, over many records, on a real gunicorn
(one worker, SQLite): the admin index (today), the checks list and its date hierarchy (all, a
year, a month), a tenant's usage page (30 days, 2 days) and CSV; each page's time, and the
worst and median latency of a client posting selfies to the same worker meanwhile. ``--tree``
serves another checkout (``git archive main | tar -x -C /tmp/old``) with this checkout's
models, for a before/after:

    python -m bench.console_days [--rows 247000] [--days 90] [--tree DIR] [--port 5793]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from bench.gunicorn import Served, served
from bench.images import REPO, selfie_body
from bench.tenant_delete import PASSWORD, USER, logged_in
from bench.threads import Threads

# Run by ``manage.py shell -c`` in the served tree: a superuser and a tenant, then ROWS check
# records spread evenly over the last DAYS days (one statement: a bank's 2,800 a day, pruned to
# 90 days, is some 250,000), two live for one spoof.
FILL = """
from django.contrib.auth.models import User
from django.db import connection
from accounts.models import Tenant
User.objects.create_superuser({user!r}, 'b@example.com', {password!r})
tenant = Tenant.objects.create(name='bank')
step = {days} * 86400 / {rows}
with connection.cursor() as cursor:
    cursor.execute('''
        INSERT INTO liveness_livenesscheck (tenant_id, created_at, is_live, score, latency_ms,
            request_id, capture, refused_code)
        WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %s)
        SELECT %s, strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || (n * %s) || ' seconds'),
            n %% 3 <> 0, 0.5, 30, hex(randomblob(16)), 'frame', '' FROM g''',
        [{rows}, tenant.pk, step])
print(tenant.pk)
"""


def pages(tenant: int) -> list[tuple[str, str]]:
    """(label, path) of each page timed."""
    today = datetime.now(UTC).date()
    checks = "/admin/liveness/livenesscheck/"
    usage = f"/admin/accounts/tenant/{tenant}/usage"
    two_days = f"?from={today - timedelta(days=1)}&to={today}"
    return [
        ("admin index (today)", "/admin/"),
        ("checks list", checks),
        ("checks list, this year", f"{checks}?created_at__year={today.year}"),
        (
            "checks list, this month",
            f"{checks}?created_at__year={today.year}&created_at__month={today.month}",
        ),
        ("usage page, 30 days", f"{usage}/"),
        ("usage page, 2 days", f"{usage}/{two_days}"),
        ("usage CSV, 30 days", f"{usage}.csv"),
    ]


def selfies(base: str, body: bytes, threads: Threads, latencies: list[float]) -> None:
    """Posts one selfie after another until stopped, recording each answer's seconds."""
    headers = {"Content-Type": "application/json"}
    while not threads.stopping.is_set():
        start = time.perf_counter()
        requests.post(f"{base}/liveness", data=body, headers=headers, timeout=120)
        latencies.append(time.perf_counter() - start)


def measure(server: Served, tenant: int) -> None:
    session = logged_in(server.base)
    session.get(f"{server.base}/admin/", timeout=120)  # the admin's first page warms its imports
    body = selfie_body(server.create_tenant("client"))
    for label, path in pages(tenant):
        latencies: list[float] = []
        threads = Threads()
        threads.spawn(selfies, server.base, body, threads, latencies)
        with threads:
            time.sleep(1.0)  # the client's own pace first
            start = time.perf_counter()
            status = session.get(server.base + path, timeout=600).status_code
            seconds = time.perf_counter() - start
        print(
            f"{label}: HTTP {status} in {seconds:.2f} s; selfies meanwhile: "
            f"{len(latencies)}, median {statistics.median(latencies):.2f} s, "
            f"worst {max(latencies):.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=247_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5793)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="console-days-"))
    with served(args.tree.resolve(), work, args.port, workers=1) as server:
        start = time.perf_counter()
        fill = FILL.format(user=USER, password=PASSWORD, rows=args.rows, days=args.days)
        tenant = int(server.manage("shell", "-c", fill).strip().splitlines()[-1])
        print(
            f"{args.rows:,} check records over {args.days} days inserted in "
            f"{time.perf_counter() - start:.1f} s"
        )
        measure(server, tenant)


if __name__ == "__main__":
    main()
