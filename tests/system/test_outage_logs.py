"""What the log says while PostgreSQL is down, behind a real gunicorn: the task worker and each
HTTP worker say once that the database went away and once that it is back (not a traceback
every 5 s from the task worker, nor a WARNING per probe from a worker), each 503 of the outage is
its access line, not an ERROR (that would be 119 ERROR lines a minute at 2 probes/s; two per
/liveness request), and the task worker stopped meanwhile says so in one line, not a traceback. The
database is a private cluster (tests.servers.postgres)."""

import json
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.postgres import PrivatePostgres
from tests.servers.processes import children, until

pytestmark = pytest.mark.system

TASK_WORKER = "facia_site.taskworker"
RUNTIME = "liveness.runtime"
# Trust authentication ignores it; the log must never show it.
PASSWORD = "pw" + uuid.uuid4().hex
PROBES = 20


@pytest.fixture(scope="module")
def server(
    cluster: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp("outage-logs")
    url = f"postgres://postgres:{PASSWORD}@127.0.0.1:{cluster.port}/facia"
    # DEBUG: the task worker's every try while the database is down is a record the test
    # waits for; an operator at INFO sees only the outage's start and end.
    env = {"DATABASE_URL": url, "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
    with gunicorn(work, 1, **env) as running:
        yield running


def records(server: Gunicorn, since: int = 0) -> list[dict[str, Any]]:
    """The server's JSON records from line ``since`` on (a line that is not one is skipped)."""
    found = []
    for line in server.log.read_text(errors="replace").splitlines()[since:]:
        try:
            found.append(json.loads(line))
        except ValueError:
            found.append({"levelname": "?", "name": "?", "message": line})
    return found


def log_lines(server: Gunicorn) -> int:
    return len(server.log.read_text(errors="replace").splitlines())


def task_worker(server: Gunicorn, since: int) -> list[dict[str, Any]]:
    return [r for r in records(server, since) if r["name"] == TASK_WORKER]


def test_the_task_worker_says_once_that_the_database_is_down_and_once_that_it_is_back(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    # Its loop has started (django-tasks' own line), so it is polling the queue.
    until(lambda: any(r["name"] == "django_tasks_db" for r in records(server)), timeout=120)
    start = log_lines(server)
    with cluster.stopped():
        until(lambda: task_worker(server, start), timeout=60)
        first = task_worker(server, start)[0]
        assert first["levelname"] == "WARNING", first
        # Two more tries, each a DEBUG record: the outage outlasts several of its polls.
        until(
            lambda: [r["levelname"] for r in task_worker(server, start)].count("DEBUG") >= 2,
            timeout=60,
        )
    until(lambda: task_worker(server, start)[-1]["levelname"] == "INFO", timeout=60)
    said = task_worker(server, start)
    assert [r["levelname"] for r in said if r["levelname"] != "DEBUG"] == ["WARNING", "INFO"]
    assert not any("exc_info" in r for r in said)
    assert "OperationalError" in said[0]["message"]
    assert f"127.0.0.1:{cluster.port}/facia" in said[0]["message"]
    assert PASSWORD not in server.log.read_text(errors="replace")
    assert not [r for r in records(server, start) if r["levelname"] == "ERROR"]


def test_status_check_503_is_its_access_line_and_so_is_each_503_of_the_outage(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    with cluster.stopped():
        until(lambda: server.status() == 503)
        start = log_lines(server)
        probes = [f"probe-{uuid.uuid4().hex[:8]}" for _ in range(PROBES)]
        for request_id in probes:
            answer = requests.get(
                f"{server.base}/status_check", headers={"X-Request-ID": request_id}, timeout=30
            )
            assert answer.status_code == 503
        checks = [f"check-{uuid.uuid4().hex[:8]}" for _ in range(PROBES)]
        for request_id in checks:
            refused = requests.post(
                f"{server.base}/liveness",
                data="{}",
                headers={"X-Request-ID": request_id},
                timeout=30,
            )
            assert refused.status_code == 503
    said = records(server, start)
    by_probe = [r for r in said if r.get("request_id") in probes]
    errors = [r for r in by_probe if r["levelname"] == "ERROR"]
    print(f"\n{PROBES} probes of /status_check with the database down: {len(errors)} ERROR")
    assert errors == []
    access = [r for r in by_probe if r["name"] == "facia.request"]
    assert [(r["path"], r["status"]) for r in access] == [("/status_check", 503)] * PROBES
    # /liveness' 503s too: each was Django's ERROR and, when it met the database, ours.
    by_check = [r for r in said if r.get("request_id") in checks]
    errors = [r for r in by_check if r["levelname"] in ("ERROR", "WARNING")]
    print(f"{PROBES} POST /liveness with the database down: {len(errors)} ERROR or WARNING")
    assert errors == []
    access = [r for r in by_check if r["name"] == "facia.request"]
    assert [(r["path"], r["status"]) for r in access] == [("/liveness", 503)] * PROBES


def test_a_check_that_meets_a_locked_table_is_one_line(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """A check whose insert waits past lock_timeout for a migration's ACCESS EXCLUSIVE lock is
    told in one line: an ERROR of ours ("database unavailable: ..."); or, when the probe
    before it waited instead (the request then answered 503 at once), that probe's record
    ("database busy: ...", a WARNING once, then DEBUG), which names the bound that ended the
    wait. Django's "Service Unavailable" ERROR for the same 503 made it two. Sent one after
    another to the one worker: the second and third find its verdict CACHE_S old, so their
    probes wait. It starts once the worker is ready: after another test's outage the worker
    answers 503 at once, holding the database down for a second, with neither line."""
    hash_id = create_tenant(server.env, f"lock-{uuid.uuid4().hex[:8]}")
    until(lambda: server.status() == 200)
    start = log_lines(server)
    checks = [f"locked-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    url = cluster.url.replace("postgres://", "postgresql://")
    with psycopg.connect(url) as lock:
        lock.execute("LOCK TABLE liveness_livenesscheck IN ACCESS EXCLUSIVE MODE")
        for request_id in checks:
            assert post(server.base, selfie_body(hash_id), request_id).status == 503
        lock.rollback()
    said = records(server, start)
    errors = [(r.get("request_id"), r["name"]) for r in said if r["levelname"] == "ERROR"]
    busy = [r for r in runtime_said(server, start) if r["message"].startswith("database busy")]
    assert set(errors) <= {(check, "liveness.middleware") for check in checks}
    assert len(set(errors)) == len(errors)
    assert len(errors) + len(busy) == len(checks)
    assert len(busy) >= len(checks) - 1
    assert "statement_timeout ended it" in busy[0]["message"]


def runtime_said(server: Gunicorn, since: int) -> list[dict[str, Any]]:
    return [r for r in records(server, since) if r["name"] == RUNTIME]


def test_a_worker_says_once_that_the_database_is_down_and_once_that_it_is_back(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    until(lambda: server.status() == 200)
    start = log_lines(server)
    with cluster.stopped():
        # Each probe more than DOWN_HOLD_S after the last one asks the database: poll until
        # PROBES of them did (one record each), as a kubelet probing every second would.
        def probed() -> bool:
            server.status()
            return len(runtime_said(server, start)) >= PROBES

        until(probed, timeout=120)
    until(lambda: server.status() == 200, timeout=60)
    said = runtime_said(server, start)
    levels = [r["levelname"] for r in said]
    met = levels.count("WARNING") + levels.count("DEBUG")
    print(f"\n{met} probes meeting the database down: {levels.count('WARNING')} WARNING")
    assert [level for level in levels if level != "DEBUG"] == ["WARNING", "INFO"]
    assert levels[0] == "WARNING" and levels[-1] == "INFO"
    assert f"postgresql://postgres@127.0.0.1:{cluster.port}/facia unusable" in said[0]["message"]
    assert "Connection refused" in said[0]["message"]
    assert not any("exc_info" in r for r in said)
    assert PASSWORD not in server.log.read_text(errors="replace")


def test_the_task_worker_stopped_during_an_outage_says_so_in_one_line(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    arbiter = [pid for pid in children(server.process.pid) if pid not in server.workers()]
    assert len(arbiter) == 1, arbiter
    start = log_lines(server)
    with cluster.stopped():
        until(lambda: task_worker(server, start), timeout=60)  # it met the outage
        os.kill(arbiter[0], signal.SIGTERM)  # the master starts another
        # gunicorn's line once the app's close() has returned
        until(
            lambda: any(r["message"].startswith("Closed dirty app") for r in records(server, start))
        )
    said = records(server, start)
    stopping = [r for r in said if "stopping" in r["message"]]
    assert [r["levelname"] for r in stopping] == ["WARNING"], stopping
    assert "OperationalError" in stopping[0]["message"]
    assert not [r for r in said if "exc_info" in r or r["levelname"] == "ERROR"]
    assert PASSWORD not in server.log.read_text(errors="replace")
