"""What a client's choices leave behind on a real gunicorn (one worker, SQLite): /metrics and
the worker's prometheus files after 5,000 requests with random HTTP methods, and the database
rows (guard.Refusal, guard.Counter) after 12,000 bad hash_ids from as many /64 networks,
through a trusted proxy on loopback. ``--tree`` serves another checkout (for before/after;
an old tree reads ``--old-proxy``'s setting instead of TRUSTED_PROXIES):

    python -m bench.growth [--tree DIR --old-proxy TRUSTED_PROXY_COUNT=1]
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import tempfile
from pathlib import Path

import requests

from bench.gunicorn import served
from bench.images import REPO

REQUESTS = 5000
SOURCES = 12_000  # past guard.throttle.MAX_SUBJECTS


def sizes(base: str, metrics_dir: Path) -> str:
    scraped = len(requests.get(f"{base}/metrics", timeout=30).content)
    files = sum(path.stat().st_size for path in metrics_dir.glob("*.db"))
    return f"/metrics {scraped / 1024:.0f} KB, prometheus files {files / 1024:.0f} KB"


def rows(database: Path) -> str:
    with sqlite3.connect(database) as db:
        refusals = db.execute("SELECT COUNT(*) FROM guard_refusal").fetchone()[0]
        counters = db.execute("SELECT COUNT(*) FROM guard_counter").fetchone()[0]
    return f"guard_refusal {refusals} rows, guard_counter {counters} rows"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5404)
    parser.add_argument("--old-proxy", default="TRUSTED_PROXIES=127.0.0.1")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facia-growth-"))
    name, _, value = args.old_proxy.partition("=")
    settings = {
        "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        "AUTH_FAILURE_LIMIT": "1000000",
        "AUTH_FAILURE_WINDOW_S": "3600",  # one window (unless the run crosses an hour)
        name: value,
    }
    with served(args.tree, work, args.port, **settings) as server:
        base = server.base
        print(f"start: {sizes(base, work / 'metrics')}")
        with requests.Session() as session:
            for _ in range(REQUESTS):
                method = "X" + secrets.token_hex(6).upper()
                session.request(method, f"{base}/liveness", timeout=30)
            print(f"after {REQUESTS} random methods: {sizes(base, work / 'metrics')}")
            for n in range(SOURCES):
                session.post(
                    f"{base}/liveness",
                    json={"hash_id": "guess"},
                    headers={"X-Forwarded-For": f"2001:db8:{n // 65536:x}:{n % 65536:x}::1"},
                    timeout=30,
                )
        print(f"after {SOURCES} bad hash_ids from as many /64s: {rows(work / 'db.sqlite3')}")


if __name__ == "__main__":
    main()
