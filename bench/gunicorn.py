"""The one place tests and benchmarks start gunicorn (the command bin/entrypoint execs),
run manage.py beside it, wait for a condition on it and list its workers; ``served`` is a
benchmark's whole server (scratch database, migrated tree, gunicorn live until the end)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from bench.images import REPO
from ml.install import default_model_dir

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    env: dict[str, str],
    out: IO[bytes] | IO[str] | int,
    tree: Path = REPO,
    timeout: float = 300.0,
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """gunicorn (start_gunicorn) once its /status_check answers 200, and the seconds from its
    start to that answer (polled every 20 ms); SIGTERM, then SIGKILL after 60 s, at the end."""
    started = time.perf_counter()
    process = start_gunicorn(env, out, tree)
    url = f"http://127.0.0.1:{env['PORT']}/status_check"

    def live() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn from {tree} exited with {process.returncode}")
        return requests.get(url, timeout=2).status_code == 200

    try:
        until(live, timeout, every=0.02)
        yield process, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def manage_in(tree: Path, env: dict[str, str], *args: str) -> str:
    """``manage.py ARGS`` of ``tree`` (another checkout's code, this interpreter); its output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@dataclass
class Served:
    """A benchmark's running server: ``tree``'s code on ``work``'s own SQLite database."""

    tree: Path
    work: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def pid(self) -> int:
        """The gunicorn master's."""
        return self.process.pid

    def manage(self, *args: str) -> str:
        return manage_in(self.tree, self.env, *args)

    def create_tenant(self, name: str) -> str:
        """A new tenant's hash_id (the command's last line)."""
        return self.manage("create_tenant", name).strip().splitlines()[-1]


@contextmanager
def served(
    tree: Path, work: Path, port: int | None = None, workers: int | None = 1, **settings: str
) -> Iterator[Served]:
    """gunicorn serving ``tree`` (this checkout's installed models) on ``port`` (a free one
    when None) with ``workers`` (gunicorn.conf.py's default when None), its database and
    var directory in ``work``, migrated, its log in ``work``/gunicorn.log; ``settings`` are
    further environment variables. Yielded once /status_check answers 200, stopped after."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "PORT": str(port or free_port()),
        "MODEL_DIR": str(default_model_dir()),
        "FACIA_VAR_DIR": str(work),
        "LOG_LEVEL": "WARNING",
        **({"WEB_CONCURRENCY": str(workers)} if workers else {}),
        **settings,
    }
    manage_in(tree, env, "migrate", "--noinput", "-v0")
    with (work / "gunicorn.log").open("wb") as log, running(env, log, tree) as (process, _):
        yield Served(tree, work, env, process)


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
