"""Which first-party files one /liveness request (or a capture session's selfie) crosses, in the
order they are first entered, and how many times that order changes package ("hops").

    python -m bench.request_trace [--size 640x480] [--selfie]

One verdict (201; with --selfie, a session's selfie: 202) through Django's test client,
in-process, after a first request has warmed the URLconf and the engine; ``sys.setprofile``
sees every Python call of the traced request (the session is opened before the trace).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench.gunicorn import manage
from bench.images import parse_size, seed_body, selfie_jpeg
from bench.load import bench_env

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = ("bench", "tests")


def first_party(filename: str) -> str | None:
    path = Path(filename)
    if not path.is_relative_to(ROOT) or ".venv" in path.parts:
        return None
    relative = path.relative_to(ROOT)
    return None if relative.parts[0] in SKIPPED else str(relative)


def trace(post: Any) -> list[str]:
    """The first-party file of every Python call ``post()`` makes, in order."""
    calls: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and (name := first_party(frame.f_code.co_filename)):
            calls.append(name)

    sys.setprofile(profile)
    try:
        post()
    finally:
        sys.setprofile(None)
    return calls


def hops(files: list[str]) -> list[str]:
    """The package of each file, with runs of one package folded: hops is its length - 1."""
    packages = [Path(name).parts[0] for name in files]
    return [p for i, p in enumerate(packages) if i == 0 or p != packages[i - 1]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--selfie", action="store_true", help="a capture session's selfie")
    args = parser.parse_args(argv)
    env = bench_env(Path(tempfile.mkdtemp(prefix="facia-trace-")))
    manage(env, "migrate", "--noinput", "-v", "0")
    hash_id = manage(env, "create_tenant", "trace").strip().splitlines()[-1]
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    from django.test import Client

    body = seed_body(selfie_jpeg(*parse_size(args.size)), hash_id)
    client = Client(HTTP_HOST="127.0.0.1")

    def post() -> None:
        reply = client.post("/liveness", body, content_type="application/json")
        assert reply.status_code == 201, reply.content

    def selfie() -> Callable[[], None]:
        """A new session's selfie, to be sent by the call returned."""
        opened = client.post("/sessions", {"hash_id": hash_id}, content_type="application/json")
        url = f"/sessions/{opened.json()['session_id']}/selfie"
        auth = f"Bearer {opened.json()['token']}"

        def send() -> None:
            reply = client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=auth)
            assert reply.status_code == 202, reply.content

        return send

    post()  # imports, URLconf, engine
    if args.selfie:
        selfie()()
    calls = trace(selfie() if args.selfie else post)
    files = list(dict.fromkeys(calls))
    path = hops(files)
    for name in files:
        print(name)
    print(f"\n{len(files)} first-party files, {len(path) - 1} package hops:")
    print(" -> ".join(path))
    print(f"package changes between consecutive first-party calls: {len(hops(calls)) - 1}")


if __name__ == "__main__":
    main()
