"""Faults with PostgreSQL behind a real gunicorn: exact quota under concurrency, a database
restart under load that loses and double-counts nothing, and /status_check answering 503 while
the database is down and 200 once it is back (the workers reconnect by themselves).

The server is a private cluster started for this module (initdb in a temp dir, own port), so
restarting it disturbs no one else using the machine's PostgreSQL.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from liveness import runtime
from tests.servers.clients import (
    Outcome,
    admin_session,
    burst,
    create_tenant,
    post,
    selfie_body,
    statuses,
)
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.ledger import assert_ledger_exact, ledger
from tests.servers.postgres import PrivatePostgres
from tests.servers.processes import until
from tests.servers.raw_http import oversized_form_post, status_of_answer

pytestmark = pytest.mark.system

WORKERS = 2


@pytest.fixture(scope="module")
def server(
    cluster: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp("faults-pg")
    with gunicorn(work, WORKERS, DATABASE_URL=cluster.url) as running:
        yield running


def new_tenant(server: Gunicorn, limit: int | None = None) -> tuple[str, str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    return name, create_tenant(server.env, name, limit)


def test_quota_exact_under_concurrency(server: Gunicorn, cluster: PrivatePostgres) -> None:
    name, hash_id = new_tenant(server, limit=5)
    outcomes = burst(server.base, selfie_body(hash_id), clients=16, tag="burst")
    book = ledger(cluster.url, name)
    print(f"\npostgresql N=16 L=5: {statuses(outcomes)}, requests_used={book.requests_used}")
    assert statuses(outcomes) == {201: 5, 429: 11}
    assert book.requests_used == 5
    assert sorted(book.consuming) == sorted(o.request_id for o in outcomes if o.status == 201)


def test_restart_under_load_loses_nothing(server: Gunicorn, cluster: PrivatePostgres) -> None:
    name, hash_id = new_tenant(server)
    body = selfie_body(hash_id)
    outcomes: list[Outcome] = []
    restarted = threading.Event()

    def client(index: int) -> None:
        n = 0
        while n < 12 or not restarted.is_set():  # keep going until after the restart
            outcomes.append(post(server.base, body, f"pg-{index}-{n}"))
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    until(lambda: len(outcomes) >= 6)
    cluster.restart()
    restarted.set()
    for thread in threads:
        thread.join()
    until(lambda: server.status() == 200)

    def served_again() -> bool:
        # The worker that met the restart answers 503 for runtime.DOWN_HOLD_S more, whatever
        # the worker that answered /status_check says: every answer goes into the ledger.
        outcome = post(server.base, body, f"pg-after-{len(outcomes)}")
        outcomes.append(outcome)
        return outcome.status == 201

    until(served_again, timeout=60, every=0.2)
    book = ledger(cluster.url, name)
    counts = statuses(outcomes)
    print(
        f"\npostgresql restart under load: {counts}, requests_used={book.requests_used}, "
        f"consuming records={len(book.consuming)}"
    )
    assert set(counts) <= {201, 503}  # a request caught by the restart: 503, nothing kept
    assert_ledger_exact(outcomes, book)


def test_status_check_follows_the_database(
    server: Gunicorn, cluster: PrivatePostgres, tmp_path: Path
) -> None:
    _, hash_id = new_tenant(server)
    with cluster.stopped():
        # Each worker remembers its last success for CACHE_S: after that, every worker has
        # probed the stopped database.
        time.sleep(runtime.CACHE_S)
        until(lambda: server.status() == 503)
        down = requests.get(f"{server.base}/status_check", timeout=30)
        assert (down.status_code, down.text) == (503, "Database unavailable")
        # The livenessProbe's path: a database outage restarts no pod (it was /status_check:
        # 3 failed probes over 60 s restarted every pod at once).
        for _ in range(2 * WORKERS):
            live = requests.get(f"{server.base}/healthz", timeout=30)
            assert (live.status_code, live.text) == (200, "Process is live")
        refused = requests.post(f"{server.base}/liveness", data=selfie_body(hash_id), timeout=30)
        assert refused.status_code == 503
        assert refused.json() == {"error": "Service is not ready, try again later."}
        assert refused.headers["Retry-After"] == "1"
    until(lambda: all(server.status() == 200 for _ in range(4)))
    assert post(server.base, selfie_body(hash_id), "pg-back").status == 201


def test_metrics_are_scraped_while_the_database_is_down(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """Every worker's own samples, without the per-tenant gauges (read from the database):
    /metrics answered 500 while the database was down, the scrape an outage needs most."""
    new_tenant(server)
    assert "facia_tenant_requests_used{" in requests.get(f"{server.base}/metrics", timeout=30).text
    with cluster.stopped():
        scrapes = [requests.get(f"{server.base}/metrics", timeout=30) for _ in range(2 * WORKERS)]
    assert [scrape.status_code for scrape in scrapes] == [200] * len(scrapes)
    assert all("facia_worker_ready{" in scrape.text for scrape in scrapes)
    assert not any("facia_tenant_requests_used{" in scrape.text for scrape in scrapes)
    until(lambda: all(server.status() == 200 for _ in range(4)))
    assert "facia_tenant_requests_used{" in requests.get(f"{server.base}/metrics", timeout=30).text


def test_the_admin_answers_503_while_the_database_is_down(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """An operator's page needs the database (the session, the tenants): while the database is
    down it gets 503, not a 500 and a traceback per page."""
    session = admin_session(server.base, server.env)
    assert session.get(f"{server.base}/admin/", timeout=30).status_code == 200
    with cluster.stopped():
        pages = [session.get(f"{server.base}/admin/", timeout=30) for _ in range(2 * WORKERS)]
    assert [page.status_code for page in pages] == [503] * len(pages)
    assert all(page.headers["Retry-After"] == "1" for page in pages)
    until(lambda: all(server.status() == 200 for _ in range(4)))
    assert session.get(f"{server.base}/admin/", timeout=30).status_code == 200  # still logged in


def test_an_upload_while_the_database_is_down_gets_503(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """Whether an admin body may be as large as the calibration zip is asked of the database
    before it is read; while the database is down the body is not read and the answer is the
    admin's 503 then, not 413 as for someone who may not calibrate."""
    cookie = str(admin_session(server.base, server.env).cookies["sessionid"])
    with cluster.stopped():
        stalled = oversized_form_post(server.port, "/admin/accounts/tenant/", 50_000_000, cookie)
        assert status_of_answer(stalled) == 503
        stalled.close()
    until(lambda: all(server.status() == 200 for _ in range(4)))


def test_healthz_is_not_queued_behind_requests_holding_django(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """The worker answers /healthz itself: through its one Django slot, the livenessProbe
    waited behind every queued request (2-6.7 s under 24 clients, its timeout 5 s). Here
    every worker's slot is held by a check waiting for a locked table, more are queued, and
    /healthz is answered before any of them is (both workers' checks wait: one for the
    table, the other for the tenant's row that one holds)."""
    _, hash_id = new_tenant(server)
    body = selfie_body(hash_id)
    done: list[Outcome] = []
    url = cluster.url.replace("postgres://", "postgresql://")
    with psycopg.connect(url) as lock, psycopg.connect(url, autocommit=True) as watch:
        lock.execute("LOCK TABLE liveness_livenesscheck IN ACCESS EXCLUSIVE MODE")
        threads = [
            threading.Thread(target=lambda n=n: done.append(post(server.base, body, f"q-{n}")))
            for n in range(3 * WORKERS)
        ]
        for thread in threads:
            thread.start()
        until(lambda: _waiting_on_locks(watch) >= WORKERS, every=0.02)
        live = requests.get(f"{server.base}/healthz", timeout=30)
        answered_before = len(done)
        lock.rollback()
    for thread in threads:
        thread.join()
    assert (live.status_code, live.text) == (200, "Process is live")
    assert answered_before == 0


def test_status_check_is_not_queued_behind_requests_holding_django(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """While its Django slot is busy the worker answers /status_check from its last probe of
    the database: through the slot, the readinessProbe waited behind every queued request
    (2-6.7 s under 24 clients, its timeout 3 s) and a busy, healthy pod left the Service. Here
    every worker's slot is held by a check waiting for its tenant's row (locked FOR NO KEY
    UPDATE, which the probe's insert, a foreign key's KEY SHARE, does not wait for), more are
    queued, and /status_check is answered, live, before any of them is."""
    name, hash_id = new_tenant(server)
    body = selfie_body(hash_id)
    done: list[Outcome] = []
    url = cluster.url.replace("postgres://", "postgresql://")
    with psycopg.connect(url) as lock, psycopg.connect(url, autocommit=True) as watch:
        lock.execute("SELECT 1 FROM accounts_tenant WHERE name = %s FOR NO KEY UPDATE", [name])
        threads = [
            threading.Thread(target=lambda n=n: done.append(post(server.base, body, f"r-{n}")))
            for n in range(3 * WORKERS)
        ]
        for thread in threads:
            thread.start()
        until(lambda: _waiting_on_locks(watch) >= WORKERS, every=0.02)
        ready = [requests.get(f"{server.base}/status_check", timeout=30) for _ in range(WORKERS)]
        heads = [requests.head(f"{server.base}/status_check", timeout=30) for _ in range(WORKERS)]
        answered_before = len(done)
        lock.rollback()
    for thread in threads:
        thread.join()
    assert [(r.status_code, r.text) for r in ready] == [(200, "Service is live")] * WORKERS
    assert [(r.status_code, r.text) for r in heads] == [(200, "")] * WORKERS
    assert all(r.headers["Content-Type"] == "text/plain" for r in ready)
    assert answered_before == 0


def test_a_locked_table_is_reported_busy_not_full(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """The probe's insert waits for a lock past DATABASE_TIMEOUT_S: the database is busy, not
    full (it said "Cannot record checks (database or disk full, or read-only)"). A tenant of
    its own: with none, the probe inserts no check, and nothing waits."""
    new_tenant(server)
    url = cluster.url.replace("postgres://", "postgresql://")
    said: list[str] = []

    def busy() -> bool:
        said.append(requests.get(f"{server.base}/status_check", timeout=30).text)
        return said[-1] == runtime.DB_BUSY

    with psycopg.connect(url) as lock:
        lock.execute("LOCK TABLE liveness_livenesscheck IN ACCESS EXCLUSIVE MODE")
        until(busy, timeout=60)  # each worker remembers a success for CACHE_S
        lock.rollback()
    assert set(said) <= {"Service is live", runtime.DB_BUSY}
    until(lambda: all(server.status() == 200 for _ in range(4)))


def test_a_check_behind_a_locked_table_waits_once(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """A check behind a locked table waits on the database once, so its 503 comes within
    DATABASE_TIMEOUT_S: a request whose probe (the worker's verdict CACHE_S old) waited out
    the bound is answered at once; it waited for its own insert as long again (5.02 s, the
    bound 3 s). Counted in PostgreSQL's log: one cancelled statement per answer. Sent one
    after another, 2 * WORKERS + 1 of them: some worker serves two, and a worker's second one
    finds its verdict due. The probe's line names the wait: it said that "a check could not
    be recorded"."""
    _, hash_id = new_tenant(server)
    until(lambda: all(server.status() == 200 for _ in range(4)))  # no other test's outage held
    body = selfie_body(hash_id)
    url = cluster.url.replace("postgres://", "postgresql://")
    pg_log, logged = cluster.datadir / "server.log", server.log.stat().st_size
    cancelled = _cancelled(pg_log)
    took: list[float] = []
    with psycopg.connect(url) as lock:
        lock.execute("LOCK TABLE liveness_livenesscheck IN ACCESS EXCLUSIVE MODE")
        outcomes = []
        for n in range(2 * WORKERS + 1):
            started = time.perf_counter()
            outcomes.append(post(server.base, body, f"w-{n}"))
            took.append(time.perf_counter() - started)
        lock.rollback()
    print(f"\n503 behind a locked table after {', '.join(f'{s:.2f}' for s in took)} s")
    assert [outcome.status for outcome in outcomes] == [503] * len(outcomes)
    assert _cancelled(pg_log) - cancelled == len(outcomes)
    with server.log.open(encoding="utf-8", errors="replace") as log:
        log.seek(logged)
        said = log.read()
    assert "a check's insert waited for a lock until statement_timeout ended it" in said
    assert "a check could not be recorded" not in said
    until(lambda: all(server.status() == 200 for _ in range(4)))


def test_a_read_behind_a_locked_checks_table_is_still_answered(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    """Only a call that inserts a check is answered 503 at once after its probe waited out the
    bound (test_a_check_behind_a_locked_table_waits_once): a session's read touches no check
    record, and is answered once the probe's wait is over (it was answered 503 as well). Read
    again and again until a probe has waited (its verdict CACHE_S old), that read included."""
    _, hash_id = new_tenant(server)
    until(lambda: server.status() == 200)  # no other test's outage held down
    opened = requests.post(f"{server.base}/sessions", json={"hash_id": hash_id}, timeout=30)
    assert opened.status_code == 201, opened.text
    session = f"{server.base}/sessions/{opened.json()['session_id']}"
    url = cluster.url.replace("postgres://", "postgresql://")
    pg_log = cluster.datadir / "server.log"
    cancelled = _cancelled(pg_log)
    read: list[requests.Response] = []

    def a_probe_waited() -> bool:
        read.append(requests.get(session, headers={"X-Hash-Id": hash_id}, timeout=30))
        return _cancelled(pg_log) > cancelled

    with psycopg.connect(url) as lock:
        lock.execute("LOCK TABLE liveness_livenesscheck IN ACCESS EXCLUSIVE MODE")
        until(a_probe_waited, timeout=60)
        lock.rollback()
    assert [(r.status_code, r.json().get("state")) for r in read] == [(200, "open")] * len(read)


def _cancelled(pg_log: Path) -> int:
    """How many statements PostgreSQL has cancelled for a timeout (lock or statement)."""
    text = pg_log.read_text(encoding="utf-8", errors="replace")
    return text.count("canceling statement due to")


def _waiting_on_locks(db: psycopg.Connection[Any]) -> int:
    """How many backends of this database wait for a lock (the table's, or the tenant row
    another check holds while it waits for the table)."""
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()
    return int(row[0]) if row else 0
