"""Processes and waiting: free ports, stopping, manage.py, polling."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (gunicorn drains), then SIGKILL if it has not exited in 45 s; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=45)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def until(condition: object, timeout: float = 60.0, every: float = 0.1) -> None:
    """Poll ``condition()`` until true; a guard against hangs, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def away_from_window_edge(seconds: int) -> None:
    """Start a sequence early in a fixed window, so it cannot straddle two windows."""
    into = time.time() % seconds
    if into > seconds - 5:
        time.sleep(seconds - into + 0.05)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []
