"""Cost of bodies that cannot be a request of ours, against a real gunicorn (one worker): the
answer and its time for a 15.8 MB object of 1.3 million keys, then for four concurrent 16 MB
``[{},{},...]`` bodies, with the worker's peak RSS (VmHWM) after each. ``--tree`` serves another
checkout's code (e.g. ``git archive HEAD~1 | tar -x -C /tmp/old``) for before/after figures.

    python -m bench.json_bombs [--tree DIR] [--port 5402]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.gunicorn import http_workers, served
from bench.images import REPO

MB = 1024 * 1024


def many_keys(hash_id: str, count: int = 1_300_000) -> bytes:
    head = b'{"hash_id": "%s", "selfie_image": "x"' % hash_id.encode()
    return head + b"".join(b',"k%d":0' % i for i in range(count)) + b"}"


def empty_objects(size: int = 16 * MB - 1) -> bytes:
    return b"[" + b"{}," * ((size - 4) // 3) + b"{}]"


def post(base: str, body: bytes) -> tuple[object, float]:
    started = time.perf_counter()
    try:
        status: object = requests.post(
            f"{base}/liveness",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=300,
        ).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - started


def rss_mb(master: int) -> tuple[int, int]:
    """The worker's current and peak resident memory, in MB."""
    status = Path(f"/proc/{http_workers(master)[0]}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def measure(base: str, master: int, hash_id: str) -> None:
    print(f"worker idle: VmRSS/VmHWM {rss_mb(master)} MB")
    body = many_keys(hash_id)
    status, seconds = post(base, body)
    print(f"1.3M keys, {len(body) / MB:.1f} MB: {status} in {seconds:.2f} s, {rss_mb(master)} MB")
    body = empty_objects()
    with ThreadPoolExecutor(4) as pool:
        started = time.perf_counter()
        answers = list(pool.map(lambda _: post(base, body), range(4)))
    seconds = time.perf_counter() - started
    statuses = [status for status, _ in answers]
    print(f"4 x 16 MB [{{}},...]: {statuses} in {seconds:.2f} s, {rss_mb(master)} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5402)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facia-json-bombs-"))
    with served(args.tree, work, args.port) as server:
        measure(server.base, server.pid, server.create_tenant("customer"))


if __name__ == "__main__":
    main()
