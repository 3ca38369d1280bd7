"""The one place tests and benchmarks start gunicorn (the command bin/entrypoint execs),
run manage.py beside it, wait for a condition on it and list its workers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import requests

from bench.images import REPO

COMMAND = ("-m", "gunicorn", "-c", "facia_site/gunicorn.conf.py", "facia_site.wsgi")


def start_gunicorn(
    env: dict[str, str],
    out: IO[bytes] | IO[str] | int,
    tree: Path = REPO,
    python: str = sys.executable,
) -> subprocess.Popen[bytes]:
    """gunicorn as `make serve` runs it, from ``tree`` with ``python``; its output (stderr
    included) to ``out``. The caller waits for /status_check and stops it."""
    return subprocess.Popen(
        [python, *COMMAND], cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT
    )


def output_of(command: list[str], env: dict[str, str], timeout: float | None = None) -> str:
    """``command``'s standard output, run in the repository (CalledProcessError on failure)."""
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=True
    )
    return done.stdout


def manage(env: dict[str, str], *args: str, timeout: float | None = None) -> str:
    """``manage.py ARGS`` with this interpreter; its standard output."""
    return output_of([sys.executable, "manage.py", *args], env, timeout)


def until(condition: Callable[[], object], timeout: float = 60.0, every: float = 0.1) -> None:
    """Poll ``condition()`` until true; a guard against hangs, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


TASK_WORKER_NAME = "facia-tasks"  # the comm of the task worker's processes (gunicorn.conf.py)


def http_workers(pid: int) -> list[int]:
    """The gunicorn master's children but its task worker."""
    workers = []
    for child in children(pid):
        try:
            name = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue  # gone meanwhile
        if name != TASK_WORKER_NAME:
            workers.append(child)
    return workers
