"""A real gunicorn on a free port (started by bench.gunicorn), with its own SQLite database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.gunicorn import http_workers, start_gunicorn
from tests.servers.processes import STARTUP_S, free_port, manage, stop, until


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The HTTP workers (not the task worker)."""
        return http_workers(self.process.pid)

    def status(self) -> int:
        return requests.get(f"{self.base}/status_check", timeout=30).status_code

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker and wait until the master has reaped and replaced it."""
        count = len(self.workers())
        os.kill(pid, signal.SIGKILL)
        until(lambda: pid not in self.workers(), timeout=120, every=0.02)
        self.wait_workers(count)

    def wait_workers(self, count: int) -> None:
        until(lambda: len(self.workers()) == count and self.status() == 200, timeout=STARTUP_S)

    def stop(self) -> int:
        return stop(self.process)

    def answers_until_exit(self, ask: Callable[[], requests.Response]) -> tuple[list[int], int]:
        """For a server that must fail to boot: the statuses ``ask()`` got until the master
        exited, and its exit code. Until that event every request goes unanswered: refused (no
        listener yet), or held in the listen queue until the master closes it (a reset) or the
        read timeout. A loaded machine takes over 10 s to load and fail two workers."""
        answers: list[int] = []
        deadline = time.monotonic() + STARTUP_S
        try:
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    answers.append(ask().status_code)
                except requests.ConnectionError:
                    time.sleep(0.05)
                except requests.Timeout:
                    pass  # held, never answered: the master has not stopped yet
        finally:
            code = self.stop()
        return answers, code


def migrated_env(work: Path, workers: int, **extra_env: str) -> dict[str, str]:
    """A server's environment (a free PORT, ``work``'s own SQLite database unless
    DATABASE_URL), its database migrated."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": str(workers),
        "TMPDIR": str(work / "tmp"),
        **extra_env,
    }
    (work / "tmp").mkdir(exist_ok=True)
    manage(env, "migrate", "-v0")
    return env


def start(env: dict[str, str], work: Path) -> Gunicorn:
    """gunicorn with ``env`` (from migrated_env), its output in ``work``/gunicorn.log; not
    waited for."""
    log = work / "gunicorn.log"
    with log.open("wb") as out:
        process = start_gunicorn(env, out)
    return Gunicorn(process, int(env["PORT"]), env, log)


@contextmanager
def gunicorn(work: Path, workers: int, **extra_env: str) -> Iterator[Gunicorn]:
    """gunicorn like `make serve`, with ``work``'s own SQLite database unless DATABASE_URL."""
    server = start(migrated_env(work, workers, **extra_env), work)
    try:
        server.wait_workers(workers)
        yield server
    finally:
        server.stop()
