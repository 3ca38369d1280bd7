"""Faults against a real gunicorn (several workers, SQLite): concurrent quota, workers killed
mid-request and under load, SIGTERM draining, and the body limit enforced before reading."""

import json
import random
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.servers.clients import Outcome, burst, create_tenant, post, selfie_body, statuses
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.ledger import assert_ledger_exact, ledger
from tests.servers.processes import STARTUP_S, away_from_window_edge, until
from tests.servers.raw_http import connect, owner_of, read_response, request_head

pytestmark = pytest.mark.system

WORKERS = 3
BODY_LIMIT = 2 * 1024 * 1024
AUTH_LIMIT = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp("faults")
    settings = {
        "LIVENESS_MAX_BODY_BYTES": str(BODY_LIMIT),
        "AUTH_FAILURE_LIMIT": str(AUTH_LIMIT),
        "TRUSTED_PROXIES": "127.0.0.1,::1",  # lets each test act as its own client IP
    }
    with gunicorn(work, WORKERS, **settings) as running:
        yield running


def new_tenant(
    server: Gunicorn, limit: int | None = None, rate: int | None = None
) -> tuple[str, str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    return name, create_tenant(server.env, name, limit, rate)


def test_quota_exact_under_concurrency(server: Gunicorn) -> None:
    name, hash_id = new_tenant(server, limit=5)
    outcomes = burst(server.base, selfie_body(hash_id), clients=16, tag="burst")
    book = ledger(server.env["DATABASE_URL"], name)
    print(f"\nsqlite N=16 L=5: {statuses(outcomes)}, requests_used={book.requests_used}")
    assert statuses(outcomes) == {201: 5, 429: 11}
    assert book.requests_used == 5
    assert sorted(book.consuming) == sorted(o.request_id for o in outcomes if o.status == 201)


def test_tenant_rate_limit_is_exact_across_workers(server: Gunicorn) -> None:
    _, hash_id = new_tenant(server, rate=5)
    body = json.dumps({"hash_id": hash_id, "selfie_image": "not base64"}).encode()
    away_from_window_edge(60)
    outcomes = burst(server.base, body, clients=12, tag="paced")
    assert statuses(outcomes) == {400: 5, 429: 7}


def test_failed_hash_ids_are_throttled_across_workers(server: Gunicorn) -> None:
    """The counter lives in the database, so every worker sees the same failures."""
    body = json.dumps({"hash_id": "guess", "selfie_image": "x"}).encode()
    headers = {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.77"}
    seen = [
        requests.post(f"{server.base}/liveness", data=body, headers=headers, timeout=30)
        for _ in range(AUTH_LIMIT + 1)
    ]
    assert [r.status_code for r in seen] == [401] * AUTH_LIMIT + [429]
    assert "Retry-After" in seen[-1].headers


def test_worker_killed_mid_request_consumes_nothing(server: Gunicorn) -> None:
    name, hash_id = new_tenant(server)
    body = selfie_body(hash_id)
    sock = connect(server.port)
    sock.sendall(request_head(server.port, len(body), "killed-1") + body[: len(body) // 2])
    victim = owner_of(sock, server)
    server.kill_worker(victim)  # returns once the master has replaced it
    status, _ = read_response(sock)
    sock.close()
    assert status == 0  # the connection died with the worker
    assert victim not in server.workers()
    assert len(server.workers()) == WORKERS
    assert post(server.base, body, "after-kill").status == 201
    book = ledger(server.env["DATABASE_URL"], name)
    assert (book.requests_used, book.consuming) == (1, ["after-kill"])


def test_workers_killed_under_load_lose_nothing(server: Gunicorn) -> None:
    name, hash_id = new_tenant(server)
    body = selfie_body(hash_id)
    outcomes: list[Outcome] = []
    kills = 3
    done = threading.Event()

    def client(index: int) -> None:
        for n in range(15):
            outcomes.append(post(server.base, body, f"load-{index}-{n}"))
        done.set()

    def killer() -> None:
        rng = random.Random(4)
        for _ in range(kills):
            busy = len(outcomes)
            while len(outcomes) < busy + 4 and not done.is_set():
                done.wait(0.05)
            server.kill_worker(rng.choice(server.workers()))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=killer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.wait_workers(WORKERS)
    book = ledger(server.env["DATABASE_URL"], name)
    counts = statuses(outcomes)
    print(
        f"\nsqlite {kills} SIGKILLs under load: {counts}, requests_used={book.requests_used}, "
        f"consuming records={len(book.consuming)}"
    )
    assert set(counts) <= {0, 201}
    assert_ledger_exact(outcomes, book)


def test_sigterm_drains_an_in_flight_request(tmp_path: Path) -> None:
    with gunicorn(tmp_path, 1) as single:
        name, hash_id = new_tenant(single)
        body = selfie_body(hash_id)
        sock = connect(single.port)
        sock.sendall(request_head(single.port, len(body), "draining") + body[:1000])
        owner_of(sock, single)  # the worker is inside the request, reading its body
        single.process.send_signal(signal.SIGTERM)
        sock.sendall(body[1000:])
        status, payload = read_response(sock)
        sock.close()
        assert status == 201, payload
        assert single.process.wait(timeout=45) == 0
        assert ledger(single.env["DATABASE_URL"], name).consuming == ["draining"]


def verdicts_counted(server: Gunicorn, tenant: str) -> float:
    text = requests.get(f"{server.base}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "facia_liveness_verdicts_total" and sample.labels["tenant"] == tenant
    )


def test_sighup_reloads_without_losing_a_request_or_a_count(tmp_path: Path) -> None:
    """SIGHUP (gunicorn reloads its config and replaces every worker) under a steady client:
    every request answered 201 and counted once. The reload emptied the metrics directory: 28
    verdicts served were scraped as 9."""
    with gunicorn(tmp_path, 1) as single:
        name, hash_id = new_tenant(single)
        body = selfie_body(hash_id)
        outcomes = [post(single.base, body, f"before-{n}") for n in range(3)]
        old = set(single.workers())
        stopped = threading.Event()

        def client() -> None:
            while not stopped.is_set():
                outcomes.append(post(single.base, body, f"hup-{len(outcomes)}"))

        thread = threading.Thread(target=client)
        thread.start()
        try:
            until(lambda: len(outcomes) >= 5, timeout=STARTUP_S)
            single.process.send_signal(signal.SIGHUP)
            until(lambda: not old & set(single.workers()), timeout=STARTUP_S, every=0.05)
            single.wait_workers(1)
            served = len(outcomes)
            until(lambda: len(outcomes) >= served + 3, timeout=STARTUP_S)
        finally:
            stopped.set()
            thread.join()
        assert statuses(outcomes) == {201: len(outcomes)}
        book = ledger(single.env["DATABASE_URL"], name)
        assert_ledger_exact(outcomes, book)
        assert verdicts_counted(single, name) == len(outcomes)


def test_declared_100mb_body_is_refused_before_it_is_sent(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=30)
    sock.sendall(request_head(server.port, 100 * 1024 * 1024) + b'{"hash_id": "')
    status, payload = read_response(sock)  # no more bytes are ever sent
    sock.close()
    assert status == 413
    assert payload == {"error": f"Request body is too large (limit {BODY_LIMIT} bytes)."}


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_chunked_body_over_the_limit_is_refused_unread(server: Gunicorn) -> None:
    """No Content-Length: the server reads a little past the limit, then answers 413 while
    the body is unfinished (its terminating chunk is never sent)."""
    sock = connect(server.port, timeout=30)
    sock.sendall(request_head(server.port, None))
    piece = chunked(b"A" * 65536)
    for _ in range(BODY_LIMIT // 65536 + 2):  # the limit and two pieces more
        sock.sendall(piece)
    status, payload = read_response(sock)
    sock.close()
    assert status == 413, payload
    assert payload == {"error": f"Request body is too large (limit {BODY_LIMIT} bytes)."}


def test_chunked_body_under_the_limit_is_served(server: Gunicorn) -> None:
    name, hash_id = new_tenant(server)
    body = selfie_body(hash_id)
    sock = connect(server.port)
    sock.sendall(request_head(server.port, None, "chunked-ok"))
    for start in range(0, len(body), 10_000):
        sock.sendall(chunked(body[start : start + 10_000]))
    sock.sendall(b"0\r\n\r\n")
    status, payload = read_response(sock)
    sock.close()
    assert status == 201, payload
    assert ledger(server.env["DATABASE_URL"], name).consuming == ["chunked-ok"]
