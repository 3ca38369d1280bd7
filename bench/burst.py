"""Worker memory after a burst of one kind of request (e.g. no-face phone photos).

Starts gunicorn like `make serve` (own SQLite database, spare port), posts ``--count``
bodies one after another and prints every worker's RSS before and after.

    python -m bench.burst [--kind no_face] [--count 60] [--size 4000x3000]
    python -m bench.burst --kind no_face_png --count 5 --size 7296x5472   # 40 MP
"""

from __future__ import annotations

import argparse
import shutil
import urllib.error
import urllib.request
from collections import Counter

from bench.images import no_face_jpeg, no_face_png, parse_size, seed_body, selfie_jpeg
from bench.load import prepare, server, worker_rss_mb

IMAGES = {"no_face": no_face_jpeg, "no_face_png": no_face_png, "live": selfie_jpeg}


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            status: int = reply.status  # typeshed leaves urlopen's answer untyped
            return status
    except urllib.error.HTTPError as error:
        return error.code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=sorted(IMAGES), default="no_face")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--port", type=int, default=5093)
    args = parser.parse_args(argv)
    work, env, hash_id = prepare("burst")
    body = seed_body(IMAGES[args.kind](*parse_size(args.size)), hash_id)
    url = f"http://127.0.0.1:{args.port}/liveness"
    try:
        with server(env, args.port) as (proc, _):
            statuses = Counter([post(url, body) for _ in range(2)])  # warm each path
            before = worker_rss_mb(proc.pid)
            statuses.update(post(url, body) for _ in range(args.count))
            after = worker_rss_mb(proc.pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.count} x {args.kind} {args.size} ({len(body) / 1e6:.1f} MB body), "
        f"statuses {dict(statuses)}: worker RSS {[round(m) for m in before]} -> "
        f"{[round(m) for m in after]} MB, growth {sum(after) - sum(before):.0f} MB in all"
    )


if __name__ == "__main__":
    main()
