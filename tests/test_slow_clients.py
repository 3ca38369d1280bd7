"""Slow clients against a real gunicorn started like `make serve`: they hold only their own
connection, never a worker, and are dropped once their head or body is late."""

import socket
import time
from collections.abc import Iterator

import pytest

from bench.slowloris import HEAD, slow_clients
from facia_site.worker import BODY_TIMEOUT_S
from tests.servers import Gunicorn, connect, create_tenant, gunicorn, post, selfie_body

WORKERS = 2
HEAD_TIMEOUT_S = 5  # gunicorn.conf.py's keepalive


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    with gunicorn(tmp_path_factory.mktemp("slow"), WORKERS) as running:
        yield running


def seconds_until_closed(sock: socket.socket) -> float:
    """How long the server took to close ``sock`` (it must send nothing first)."""
    start = time.monotonic()
    assert sock.recv(1024) == b""
    return time.monotonic() - start


def test_requests_complete_while_20_slow_clients_are_connected(server: Gunicorn) -> None:
    body = selfie_body(create_tenant(server.env, "busy"))
    with slow_clients("127.0.0.1", server.port, count=20, every_s=2):
        time.sleep(1)  # every slow connection accepted and trickling
        for i in range(5):
            start = time.monotonic()
            outcome = post(server.base, body, f"beside-slow-{i}")
            # Sync workers: ~60 s (until the worker timeout killed them); here ~30 ms.
            assert (outcome.status, time.monotonic() - start < 5) == (201, True)


def test_a_trickled_head_is_dropped_after_the_head_timeout(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=30)
    for byte in HEAD[:4]:
        sock.send(bytes([byte]))
        time.sleep(1)
    assert seconds_until_closed(sock) < HEAD_TIMEOUT_S + 3
    sock.close()


def test_a_stalled_body_is_dropped_after_the_body_timeout(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=60)
    sock.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"hash_id": ')
    assert seconds_until_closed(sock) < BODY_TIMEOUT_S + 3
    sock.close()


def test_an_idle_connection_is_dropped(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=30)
    assert seconds_until_closed(sock) < HEAD_TIMEOUT_S + 3
    sock.close()
