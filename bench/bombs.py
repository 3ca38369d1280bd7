"""Time-to-answer of each decode bomb in the hostile corpus against a real gunicorn (one
worker), the worker's peak memory (VmHWM) after each, and a normal client's latency while a
bomb is in flight. ``--tree`` serves another checkout's code (e.g. an older commit from
``git archive``) with this checkout's bombs, for before/after figures.

    python -m bench.bombs [--tree DIR] [--port 5401]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import django
import requests

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
django.setup()

from bench.corpus import CASES  # noqa: E402
from bench.gunicorn import http_workers, served  # noqa: E402
from bench.images import selfie_body  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAMES = [name for name in CASES if name.startswith("bomb-")] + ["data-uri-16mb-semicolons"]


def post(base: str, body: bytes) -> tuple[object, float]:
    started = time.perf_counter()
    headers = {"Content-Type": "application/json"}
    try:
        status: object = requests.post(
            f"{base}/liveness", data=body, headers=headers, timeout=180
        ).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - started


def peak_mb(master: int) -> int:
    status = Path(f"/proc/{http_workers(master)[0]}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if "VmHWM" in line)) // 1024


def measure(base: str, master: int, attacker: str, customer: bytes) -> None:
    print(f"normal selfie: {post(base, customer)}")
    for name in NAMES:
        body = CASES[name](attacker).body
        status, seconds = post(base, body)
        print(f"{name}: {len(body)} B -> {status} in {seconds:.2f} s, VmHWM {peak_mb(master)} MB")
    bomb = CASES["bomb-jpeg-40mp-5000-scans"](attacker).body
    thread = threading.Thread(target=post, args=(base, bomb))
    thread.start()
    time.sleep(0.3)
    print(f"normal selfie while a bomb is in flight: {post(base, customer)}")
    thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5401)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facia-bombs-"))
    with served(args.tree, work, args.port, AUTH_FAILURE_LIMIT="0") as server:
        attacker, customer = server.create_tenant("attacker"), server.create_tenant("customer")
        measure(server.base, server.pid, attacker, selfie_body(customer))


if __name__ == "__main__":
    main()
