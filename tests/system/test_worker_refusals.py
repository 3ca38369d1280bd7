"""The gunicorn worker's own refusals, before Django, behind a real gunicorn: a client over
its connection cap gets 429, counted in facia_worker_refusals_total and summed up in one INFO
line per worker every 10 s that names the request ids they gave. They left no log line and no
sample: a refused client's X-Request-ID was found nowhere."""

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests

from facia_site.worker import EVICTIONS_LOGGED_EVERY_S
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.processes import until

pytestmark = pytest.mark.system

PER_CLIENT = 2  # CONNECTIONS_PER_CLIENT
REFUSED = 3
# Another loopback address than the scrapes' (127.0.0.1): another client, its own cap.
FLOOD = "127.0.5.1"
SAMPLE = 'facia_worker_refusals_total{reason="client_connections",status="429"}'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp("worker-refusals")
    env = {"CONNECTIONS_PER_CLIENT": str(PER_CLIENT), "LOG_FORMAT": "json"}
    with gunicorn(work, 1, **env) as running:
        yield running


def connect(server: Gunicorn) -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", server.port), timeout=30, source_address=(FLOOD, 0)
    )
    return sock


def refused_id(server: Gunicorn) -> str:
    """A /status_check on one connection more than the cap: its 429's X-Request-ID."""
    with connect(server) as sock:
        sock.sendall(b"GET /status_check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 429 "), head
    return next(
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")
        if line.lower().startswith("x-request-id:")
    )


def messages(server: Gunicorn) -> list[str]:
    found = []
    for line in server.log.read_text(errors="replace").splitlines():
        try:
            found.append(json.loads(line)["message"])
        except (ValueError, KeyError):
            continue
    return found


def test_the_workers_own_429s_are_counted_and_logged(server: Gunicorn) -> None:
    with ExitStack() as idle:
        for _ in range(PER_CLIENT):
            idle.enter_context(connect(server))
        ids = [refused_id(server) for _ in range(REFUSED)]
    scrape = requests.get(f"{server.base}/metrics", timeout=30).text
    assert f"{SAMPLE} {float(REFUSED)}" in scrape, [
        line for line in scrape.splitlines() if "refusals" in line
    ]
    summary = f"refused {REFUSED} connections in {EVICTIONS_LOGGED_EVERY_S} s before Django"

    def summed_up() -> list[str]:
        return [m for m in messages(server) if m.startswith(summary)]

    until(summed_up, timeout=EVICTIONS_LOGGED_EVERY_S * 6)
    [line] = summed_up()
    assert f"{REFUSED} 429 client_connections" in line, line
    assert f"request ids {ids[0]} to {ids[-1]}" in line, line
    # One line for the flood, none per refusal.
    assert not any(request_id in m for m in messages(server) for request_id in ids[1:-1])
