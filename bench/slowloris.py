"""Slow and hostile clients against a running server: per-request latency of a normal client
meanwhile.

``--attack trickle`` (default): ``--slow`` connections each send one byte of a request head
every ``every_s`` seconds (never finishing it). The others open ``--count`` connections from
``--sources`` loopback addresses, 127.0.0.2 on (clients other than the normal one), and hold
them: ``large-heads`` sends a head declaring a 16 MB body and one byte of it, ``idle`` sends
nothing, ``chunked`` a chunked head and one byte of a 1 MB chunk. Meanwhile one normal client
(from 127.0.0.1) posts ``body`` ``requests`` times, one after another (chunked for
``chunked``), and what the held connections got is counted.

    python -m bench.slowloris URL BODY_FILE [--slow 20] [--every 2] [--requests 20]
    python -m bench.slowloris URL BODY_FILE --attack large-heads --count 250 --requests 5
    python -m bench.slowloris --issue-attacks TREE [--requests 3 --timeout 30]  # own servers
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

HEAD = b"POST /liveness HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
# What each held connection sends once, then nothing more.
ATTACKS = {
    "large-heads": HEAD + b"Content-Length: 16000000\r\n\r\n{",
    "idle": b"",
    "chunked": HEAD + b"Transfer-Encoding: chunked\r\n\r\n100000\r\n{",
}


def _trickle(sock: socket.socket, stop: threading.Event, every_s: float) -> None:
    for i in range(10**9):
        if stop.wait(every_s if i else 0):
            return
        try:
            sock.send(HEAD[i % len(HEAD) : i % len(HEAD) + 1])
        except OSError:
            return  # the server closed it: that is what a header timeout does


@contextmanager
def slow_clients(
    host: str, port: int, count: int, every_s: float = 2.0
) -> Iterator[list[socket.socket]]:
    """``count`` connections trickling one header byte every ``every_s`` s, while inside;
    yields their sockets."""
    stop = threading.Event()
    socks = [socket.create_connection((host, port), timeout=10) for _ in range(count)]
    threads = [threading.Thread(target=_trickle, args=(s, stop, every_s)) for s in socks]
    for thread in threads:
        thread.start()
    try:
        yield socks
    finally:
        stop.set()
        for thread, sock in zip(threads, socks, strict=True):
            thread.join()
            sock.close()


@contextmanager
def held_connections(
    host: str, port: int, count: int, send: bytes, sources: list[str]
) -> Iterator[list[socket.socket]]:
    """``count`` connections (from ``sources`` in turn) that each send ``send`` once and then
    nothing, held open while inside; a connection the server refuses stays closed."""
    socks = []
    try:
        for i in range(count):
            source = sources[i % len(sources)]
            sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
            socks.append(sock)
            with suppress(OSError):  # refused at once
                sock.sendall(send)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def timed_post(
    url: str, body: bytes, timeout_s: float = 120, chunked: bool = False
) -> tuple[int, float]:
    """Status and seconds of one POST (status 0: no answer)."""
    if chunked:
        return _timed_chunked_post(url, body, timeout_s)
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            reply.read()
            status = reply.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = 0
    return status, time.perf_counter() - start


def _timed_chunked_post(url: str, body: bytes, timeout_s: float) -> tuple[int, float]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout_s)
    start = time.perf_counter()
    try:
        connection.request(
            "POST",
            parts.path,
            iter([body]),
            {"Content-Type": "application/json"},
            encode_chunked=True,
        )
        reply = connection.getresponse()
        reply.read()
        status = reply.status
    except OSError:
        status = 0
    finally:
        connection.close()
    return status, time.perf_counter() - start


def run(url: str, body: bytes, slow: int, every_s: float, requests: int) -> list[float]:
    parts = urlsplit(url)
    with slow_clients(parts.hostname or "127.0.0.1", parts.port or 80, slow, every_s):
        time.sleep(1)  # let every slow connection be accepted first
        results = _normal_client(url, body, requests)
    return _summary(f"{slow} slow clients", results)


def run_attack(
    url: str, body: bytes, attack: str, count: int, sources: int, requests: int, timeout_s: float
) -> list[float]:
    """The normal client's latencies while ``count`` connections of ``attack`` are held."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    addresses = [f"127.0.{(i + 2) // 256}.{(i + 2) % 256}" for i in range(sources)]
    with held_connections(host, port, count, ATTACKS[attack], addresses) as socks:
        time.sleep(1)  # let the server take in what it will of them first
        results = _normal_client(url, body, requests, timeout_s, attack == "chunked")
        answers = answers_so_far(socks)
    print(f"{attack}: what its connections got from the server: {answers}")
    return _summary(f"{attack}: {count} connections from {sources} address(es)", results)


def answers_so_far(socks: list[socket.socket]) -> dict[str, int]:
    """How many connections got each status line so far ("nothing": none yet; "closed":
    closed or reset without one)."""
    counts: dict[str, int] = {}
    for sock in socks:
        sock.setblocking(False)
        try:
            data = sock.recv(64)
            what = data.split(b"\r\n")[0].decode(errors="replace") if data else "closed"
        except BlockingIOError:
            what = "nothing"
        except OSError:
            what = "closed"
        counts[what] = counts.get(what, 0) + 1
    return dict(sorted(counts.items()))


def _normal_client(
    url: str, body: bytes, requests: int, timeout_s: float = 120, chunked: bool = False
) -> list[tuple[int, float]]:
    results = []
    for i in range(requests):
        results.append(timed_post(f"{url}/liveness", body, timeout_s, chunked))
        print(f"request {i}: {results[-1][0]} in {results[-1][1] * 1000:.0f} ms", flush=True)
    return results


def _summary(what: str, results: list[tuple[int, float]]) -> list[float]:
    latencies = [seconds for _, seconds in results]
    print(
        f"{what}: normal client median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms, statuses {sorted({s for s, _ in results})} "
        "(0: no answer)"
    )
    return latencies


# The issue's three attacks at full size: (attack, connections).
ISSUE_ATTACKS = (("large-heads", 250), ("idle", 1000), ("chunked", 6))


def run_issue_attacks(tree: Path, sources: int, requests: int, timeout_s: float) -> None:
    """Each of ISSUE_ATTACKS against a fresh gunicorn from ``tree`` (2 workers, as `make
    serve` starts it, its own SQLite database): run once with an older checkout as ``tree``
    and once with this one for before/after figures."""
    from bench.gunicorn import served
    from bench.images import selfie_body

    with tempfile.TemporaryDirectory(prefix="facia-slowloris-") as scratch:
        for attack, count in ISSUE_ATTACKS:
            (work := Path(scratch) / attack).mkdir()
            with served(tree, work, workers=2) as server:
                body = selfie_body(server.create_tenant("slowloris"))
                print(f"{attack}: server from {tree}, normal body {len(body)} bytes", flush=True)
                run_attack(server.base, body, attack, count, sources, requests, timeout_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="e.g. http://127.0.0.1:5001")
    parser.add_argument("body", nargs="?", type=Path, help="a JSON request body file")
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--attack", choices=["trickle", *ATTACKS], default="trickle")
    parser.add_argument("--count", type=int, default=250, help="held connections")
    parser.add_argument("--sources", type=int, default=1, help="their source addresses")
    parser.add_argument("--timeout", type=float, default=60, help="per normal request, s")
    parser.add_argument(
        "--issue-attacks",
        type=Path,
        metavar="TREE",
        help="no URL: start servers from TREE and run the three attacks of issue 18 at size",
    )
    args = parser.parse_args()
    if args.issue_attacks:
        run_issue_attacks(args.issue_attacks, args.sources, args.requests, args.timeout)
        return
    if not (args.url and args.body):
        parser.error("URL and BODY are needed without --issue-attacks")
    url, body = args.url.rstrip("/"), args.body.read_bytes()
    if args.attack == "trickle":
        run(url, body, args.slow, args.every, args.requests)
    else:
        run_attack(url, body, args.attack, args.count, args.sources, args.requests, args.timeout)


if __name__ == "__main__":
    main()
