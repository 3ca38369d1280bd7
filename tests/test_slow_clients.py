"""Slow clients against a real gunicorn started like `make serve`: they hold only their own
connection, never a worker, and are dropped once their head or body is late."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.slowloris import HEAD, slow_clients
from facia_site.worker import BODY_TIMEOUT_S
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.raw_http import connect, read_response, request_head

WORKERS = 2
HEAD_TIMEOUT_S = 5  # gunicorn.conf.py's keepalive
# 3.9 MB, served by WhiteNoise: more than the kernel buffers for a client that does not read.
BIG_STATIC = "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js.map"


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
    assert seconds_until_closed(sock) < BODY_TIMEOUT_S + 2
    sock.close()


def test_an_idle_connection_is_dropped(server: Gunicorn) -> None:
    sock = connect(server.port, timeout=30)
    assert seconds_until_closed(sock) < HEAD_TIMEOUT_S + 3
    sock.close()


def test_a_client_that_does_not_read_its_response_holds_no_worker(server: Gunicorn) -> None:
    body = selfie_body(create_tenant(server.env, "reader"))
    stuck = []
    for _ in range(WORKERS * 2):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET {BIG_STATIC} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        stuck.append(sock)
    time.sleep(1)
    start = time.monotonic()
    assert post(server.base, body, "beside-unread").status == 201
    assert time.monotonic() - start < 5
    for sock in stuck:
        sock.close()


def send_in_pieces(port: int, body: bytes, pieces: int, first_with_head: int) -> tuple[int, dict]:
    """``body`` after its head, the head's packet carrying its first ``first_with_head`` bytes
    (what gunicorn's parser reads ahead), the rest in ``pieces`` writes with pauses."""
    sock = connect(port)
    sock.sendall(request_head(port, len(body)) + body[:first_with_head])
    rest = body[first_with_head:]
    step = max(1, -(-len(rest) // pieces))
    for start in range(0, len(rest), step):
        time.sleep(0.05)
        sock.sendall(rest[start : start + step])
    status, answer = read_response(sock)
    sock.close()
    assert answer is not None
    return status, answer


def test_a_body_in_pieces_gets_the_answer_of_one_in_one_write(server: Gunicorn) -> None:
    """The worker reads a declared body straight off the socket (after what the parser read
    ahead with the head): every split gives the same verdict as the plain request."""
    body = selfie_body(create_tenant(server.env, "pieces"))
    whole = requests.post(f"{server.base}/liveness", data=body, timeout=60)
    assert whole.status_code == 201
    for pieces, first in ((1, 0), (7, 1), (3, 5000), (1, len(body) - 1), (1, len(body))):
        status, answer = send_in_pieces(server.port, body, pieces, first)
        assert (status, answer) == (201, whole.json()), (pieces, first)


def test_a_body_cut_short_is_answered_and_the_worker_keeps_serving(server: Gunicorn) -> None:
    body = selfie_body(create_tenant(server.env, "short"))
    sock = connect(server.port)
    sock.sendall(request_head(server.port, len(body)) + body[:-100])
    sock.shutdown(socket.SHUT_WR)  # the last 100 bytes never come
    status, _ = read_response(sock)
    sock.close()
    assert status == 400  # the JSON is cut: malformed, as before
    for i in range(WORKERS * 2):
        assert post(server.base, body, f"after-short-{i}").status == 201


def test_no_worker_keeps_a_child_process_after_boot(server: Gunicorn) -> None:
    """`import openvino` sent a telemetry event from a forked process nobody reaped: each
    worker kept a zombie child from boot (ml/__init__.py keeps that module out)."""
    for worker in server.workers():
        tasks = Path(f"/proc/{worker}/task").iterdir()
        assert [child for task in tasks for child in (task / "children").read_text().split()] == []
