"""A hung PostgreSQL: every process of a private cluster SIGSTOPped (a server that does not
run; its kernel still answers TCP), SIGCONTinued afterwards.

What ends a wait on it (measured, printed): neither TCP keepalives nor ``tcp_user_timeout``
nor ``statement_timeout``, only the client's own bound (facia_site.postgresql). Behind a real
gunicorn, /liveness and /status_check answer 503 + Retry-After within BOUND_S while it is
frozen (they waited as long as the freeze before), and serve again after SIGCONT, with no
quota unit taken without its check record. A SQLite database locked by another process
answers 503 after its busy timeout (DATABASE_TIMEOUT_S), not 20 s.
"""

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
import requests
from django.db import connection
from django.test import Client

from accounts.models import Tenant
from facia_site.postgresql.base import bounded
from tests.conftest import LIVE_JPG, data_uri
from tests.servers.clients import create_tenant, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.ledger import ledger
from tests.servers.postgres import PrivatePostgres
from tests.servers.processes import until

pytestmark = pytest.mark.system

# DATABASE_TIMEOUT_S=3 (the default): a request gives up on a frozen server after 3 s, 6 s
# when its pooled connection's health check and then a new connection both time out. The
# margin is for a loaded CI machine; before, every request waited as long as the freeze.
BOUND_S = 15.0
CLIENT_TIMEOUT_S = 40.0
WORKERS = 2


def _conninfo(cluster: PrivatePostgres) -> str:
    return cluster.url.replace("postgres://", "postgresql://")


def test_only_the_clients_own_bound_ends_a_wait_on_a_frozen_server(
    cluster: PrivatePostgres,
) -> None:
    frozen_s = 8.0  # over twice the bound: a wait still going then would go on as long
    # libpq's TCP options, in the conninfo string (2 s: below the freeze, above the bound).
    tcp = "keepalives=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=2"
    tcp += " tcp_user_timeout=2000"
    kinds: dict[str, Callable[[], psycopg.Connection]] = {
        "plain": lambda: psycopg.connect(_conninfo(cluster), autocommit=True),
        "keepalives+tcp_user_timeout": lambda: psycopg.connect(
            f"{_conninfo(cluster)}?{tcp.replace(' ', '&')}", autocommit=True
        ),
        "statement_timeout": lambda: psycopg.connect(
            _conninfo(cluster), autocommit=True, options="-c statement_timeout=2000"
        ),
        "client bound (facia_site.postgresql)": lambda: bounded(3).connect(
            _conninfo(cluster), autocommit=True
        ),
    }
    connections = {name: connect() for name, connect in kinds.items()}
    ended: dict[str, tuple[str, float]] = {}

    def query(name: str, connection: psycopg.Connection) -> None:
        started = time.monotonic()
        try:
            connection.execute("SELECT 1")
            ended[name] = ("answered", time.monotonic() - started)
        except psycopg.OperationalError as exc:
            ended[name] = (f"error: {exc}", time.monotonic() - started)

    threads = [threading.Thread(target=query, args=item) for item in connections.items()]
    with cluster.frozen():
        frozen_at = time.monotonic()
        for thread in threads:
            thread.start()
        threads[-1].join(timeout=frozen_s)  # the bounded one ends on its own
        # The freeze lasts frozen_s in all: the other waits last as long, or end before.
        time.sleep(max(0.0, frozen_at + frozen_s - time.monotonic()))
    for thread in threads:
        thread.join(timeout=60)
    for opened in connections.values():
        opened.close()
    print(f"\nSELECT 1 on a server frozen for {frozen_s:.0f} s:")
    for name, (how, seconds) in ended.items():
        print(f"  {name}: {how} after {seconds:.1f} s")
    outcome, seconds = ended["client bound (facia_site.postgresql)"]
    assert outcome.startswith("error: the database did not answer within 3 s")
    assert 2.5 <= seconds < frozen_s
    for name in ("plain", "keepalives+tcp_user_timeout", "statement_timeout"):
        assert ended[name][0] == "answered" and ended[name][1] >= frozen_s - 0.5, name


@pytest.fixture(scope="module")
def server(
    cluster: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp("db-freeze")
    with gunicorn(work, WORKERS, DATABASE_URL=cluster.url) as running:
        yield running


@dataclass(frozen=True)
class Answer:
    request_id: str
    status: int  # 0: no answer within CLIENT_TIMEOUT_S
    retry_after: str | None
    seconds: float
    started: float  # time.monotonic() when sent


def timed(method: str, url: str, request_id: str, body: bytes | None = None) -> Answer:
    started = time.monotonic()
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    try:
        reply = requests.request(method, url, data=body, headers=headers, timeout=CLIENT_TIMEOUT_S)
    except requests.RequestException:
        return Answer(request_id, 0, None, time.monotonic() - started, started)
    retry = reply.headers.get("Retry-After")
    return Answer(request_id, reply.status_code, retry, time.monotonic() - started, started)


def test_a_frozen_database_answers_503_within_seconds_and_recovers(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    body = selfie_body(create_tenant(server.env, name))
    assert timed("POST", f"{server.base}/liveness", "warm", body).status == 201
    answers: list[Answer] = []
    probes: list[Answer] = []
    done = threading.Event()

    def client(index: int) -> None:
        n = 0
        while not done.is_set():
            answers.append(timed("POST", f"{server.base}/liveness", f"frz-{index}-{n}", body))
            n += 1

    def prober() -> None:
        n = 0
        while not done.is_set():
            probes.append(timed("GET", f"{server.base}/status_check", f"probe-{n}"))
            n += 1
            time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    threads.append(threading.Thread(target=prober))
    for thread in threads:
        thread.start()
    try:
        until(lambda: len(answers) >= 3, timeout=60)  # checks in flight when it freezes
        with cluster.frozen():
            frozen_at = time.monotonic()

            def refused_after(found: list[Answer], seconds: float) -> int:
                return sum(a.status == 503 and a.started > frozen_at + seconds for a in found)

            # Long enough that waits would pile up (BOUND_S), answered 503 all along.
            until(
                lambda: (
                    refused_after(answers, BOUND_S) >= 4 and refused_after(probes, BOUND_S) >= 2
                ),
                timeout=120,
            )
        thawed_at = time.monotonic()
        until(lambda: any(a.status == 201 and a.started > thawed_at for a in answers), timeout=60)
        until(lambda: any(p.status == 200 and p.started > thawed_at for p in probes), timeout=60)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 10)
    during = [a for a in answers + probes if frozen_at <= a.started < thawed_at]
    print(
        f"\nfrozen {thawed_at - frozen_at:.1f} s: {len(during)} answers during it, statuses "
        f"{sorted({a.status for a in during})}, slowest {max(a.seconds for a in during):.1f} s, "
        f"all statuses {sorted({a.status for a in answers + probes})}"
    )
    assert all(a.status in (201, 503) for a in answers), [
        a for a in answers if a.status not in (201, 503)
    ]
    assert all(p.status in (200, 503) for p in probes)
    assert all(a.retry_after == "1" for a in answers + probes if a.status == 503)
    assert max(a.seconds for a in answers + probes) < BOUND_S
    book = ledger(cluster.url, name)
    seen = [a.request_id for a in answers if a.status == 201] + ["warm"]
    # One transaction: no unit without its record (a check committed by a backend resumed
    # after its client gave up may have both), and every 201 has its record.
    assert book.requests_used == len(book.consuming)
    assert all(book.consuming.count(request_id) == 1 for request_id in seen)


@pytest.mark.usefixtures("warm_engine")
def test_a_locked_sqlite_database_answers_503_within_its_busy_timeout(
    transactional_db: None, make_tenant: Callable[..., tuple[Tenant, str]], client: Client
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's busy timeout")
    _, hash_id = make_tenant()
    body = json.dumps({"hash_id": hash_id, "selfie_image": data_uri(LIVE_JPG)})
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held
    try:
        started = time.monotonic()
        refused = client.post("/liveness", data=body, content_type="application/json")
        seconds = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    print(f"\nSQLite locked: {refused.status_code} after {seconds:.1f} s")
    assert (refused.status_code, refused["Retry-After"]) == (503, "1")
    assert seconds < BOUND_S  # DATABASE_TIMEOUT_S=3; 20 s before
    assert client.post("/liveness", data=body, content_type="application/json").status_code == 201
