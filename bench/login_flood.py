"""Admin login flood against a running server: ``/liveness`` latency of one client meanwhile.

``flooders`` clients post wrong passwords to the admin login page as fast as they can (each
with its own session and CSRF token) while one client posts ``body`` to ``/liveness``.

    python -m bench.login_flood URL BODY_FILE [--flooders 4] [--requests 100] [--user root]
"""

from __future__ import annotations

import argparse
import re
import statistics
import threading
from pathlib import Path

import requests

from bench.slowloris import timed_post

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def flood(url: str, user: str, stop: threading.Event, answers: list[int]) -> None:
    session = requests.Session()
    login = f"{url}/admin/login/"
    token = TOKEN.search(session.get(login, timeout=30).text).group(1)  # type: ignore[union-attr]  # no match: an error
    form = {"csrfmiddlewaretoken": token, "username": user, "password": "wrong"}
    while not stop.is_set():
        answers.append(session.post(login, data=form, headers={"Referer": login}).status_code)


def run(url: str, body: bytes, flooders: int, requests_: int, user: str) -> float:
    stop = threading.Event()
    answers: list[int] = []
    threads = [
        threading.Thread(target=flood, args=(url, user, stop, answers)) for _ in range(flooders)
    ]
    for thread in threads:
        thread.start()
    try:
        latencies = [timed_post(f"{url}/liveness", body)[1] for _ in range(requests_)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    p50 = statistics.median(latencies) * 1000
    print(
        f"{flooders} login flooders: /liveness p50 {p50:.0f} ms, "
        f"p95 {statistics.quantiles(latencies, n=20)[-1] * 1000:.0f} ms; "
        f"{len(answers)} login posts answered"
    )
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body", type=Path)
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--user", default="root")
    args = parser.parse_args()
    run(args.url.rstrip("/"), args.body.read_bytes(), args.flooders, args.requests, args.user)


if __name__ == "__main__":
    main()
