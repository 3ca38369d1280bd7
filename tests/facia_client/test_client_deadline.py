"""--timeout bounds the whole call, resolving and connecting included, and no byte of a request
is sent once the deadline has passed (docs/integrator/client.md). A POST sent late was judged,
spending a unit of quota, while the client reported a Timeout."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from facia_client import FaciaClient, Timeout
from tests.conftest import LIVE_JPG

REAL_GETADDRINFO = socket.getaddrinfo


@contextmanager
def recording() -> Iterator[tuple[int, list[bytes]]]:
    """A listener on 127.0.0.1 that accepts every connection and records what each sent
    (nothing answered); its port and the list of what came."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while chunk := conn.recv(65536):
                        data += chunk
                except OSError:
                    pass
                received.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        stop.set()
        thread.join(10)
        listener.close()


@contextmanager
def blackholed() -> Iterator[int]:
    """A port whose SYNs are dropped: a listener whose accept queue is full (as an address
    that is unreachable or filtered)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):  # the queue holds backlog + 1 on Linux
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def resolving(monkeypatch: pytest.MonkeyPatch, name: str, answer: Any, delay: float = 0) -> None:
    """``name`` resolves to ``answer`` (a list of getaddrinfo tuples) after ``delay`` seconds."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            time.sleep(delay)
            return answer
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def address(port: int) -> tuple[Any, ...]:
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))


def test_a_slow_resolution_times_out_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo taking 3 s: the client said "Timeout ... within 1 s" after 3 s, and then
    sent the POST anyway (the server judged it: a unit spent)."""
    with recording() as (port, received):
        resolving(monkeypatch, "slow.example", [address(port)], delay=3)
        started = time.monotonic()
        with pytest.raises(Timeout, match="within 1 s"):
            FaciaClient(f"http://slow.example:{port}", "x", timeout=1).check(LIVE_JPG)
        elapsed = time.monotonic() - started
        time.sleep(3)  # the resolution ends meanwhile: nothing may follow it
    assert elapsed < 1.8, elapsed
    assert received == []


def test_connecting_shares_the_deadline_across_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name of three unreachable addresses took three times the timeout (each address
    got all of it)."""
    with blackholed() as port:
        resolving(monkeypatch, "multi.example", [address(port)] * 3)
        started = time.monotonic()
        with pytest.raises(Timeout, match="within 1 s"):
            FaciaClient(f"http://multi.example:{port}", "x", timeout=1).check(LIVE_JPG)
    elapsed = time.monotonic() - started
    assert elapsed < 1.8, elapsed


def test_no_request_after_the_deadline_on_the_next_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first address eats the whole timeout; the second one answers at once: the request
    must not be sent to it after the deadline."""
    with blackholed() as dead, recording() as (alive, received):
        resolving(monkeypatch, "dual.example", [address(dead), address(alive)])
        with pytest.raises(Timeout):
            FaciaClient("http://dual.example:1", "x", timeout=1).check(LIVE_JPG)
        time.sleep(1)
    assert all(not data for data in received), received


def test_a_live_address_after_a_refused_one_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused address (nothing listening) costs no time: the next one gets the request."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()
    with recording() as (alive, received):
        resolving(monkeypatch, "two.example", [address(refused_port), address(alive)])
        with pytest.raises(Timeout):  # the recorder never answers
            FaciaClient("http://two.example:1", "x", timeout=1).check(LIVE_JPG)
        time.sleep(0.5)
    assert len(received) == 1 and received[0].startswith(b"POST /liveness HTTP/1.1")
