"""Slow clients against a running server: per-request latency of a normal client meanwhile.

``slow`` connections each send one byte of a request head every ``every_s`` seconds (never
finishing it) while one normal client posts ``body`` ``requests`` times, one after another.

    python -m bench.slowloris URL BODY_FILE [--slow 20] [--every 2] [--requests 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

HEAD = b"POST /liveness HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


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


def timed_post(url: str, body: bytes, timeout_s: float = 120) -> tuple[int, float]:
    """Status and seconds of one POST (status 0: no answer)."""
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


def run(url: str, body: bytes, slow: int, every_s: float, requests: int) -> list[float]:
    parts = urlsplit(url)
    with slow_clients(parts.hostname or "127.0.0.1", parts.port or 80, slow, every_s):
        time.sleep(1)  # let every slow connection be accepted first
        results = []
        for i in range(requests):
            results.append(timed_post(f"{url}/liveness", body))
            print(f"request {i}: {results[-1][0]} in {results[-1][1] * 1000:.0f} ms", flush=True)
    latencies = [seconds for _, seconds in results]
    print(
        f"{slow} slow clients: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms, statuses {sorted({s for s, _ in results})}"
    )
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="e.g. http://127.0.0.1:5001")
    parser.add_argument("body", type=Path, help="a JSON request body file")
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    run(args.url.rstrip("/"), args.body.read_bytes(), args.slow, args.every, args.requests)


if __name__ == "__main__":
    main()
