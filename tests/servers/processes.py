"""Processes and waiting: free ports, stopping, manage.py, polling (``free_port``, ``until`` and
``children`` are bench.gunicorn's)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import bench.gunicorn
from bench.gunicorn import children as children  # re-exported for the tests
from bench.gunicorn import free_port as free_port
from bench.gunicorn import until as until

# How long a server or a new worker may take to become ready (load the models, compile, warm
# up) before a test gives up. Two workers took 3.5 s here, 4.7 s beside two busy loops (load 9);
# a cold compile cache or a far busier CI machine takes many times that. A guard against hangs,
# never a timing assertion.
STARTUP_S = 300.0


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (gunicorn drains), then SIGKILL if it has not exited in 45 s; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=45)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def in_session(sid: int) -> list[int]:
    """The live processes (zombies aside) of session ``sid``: what a process started with
    ``start_new_session=True`` (sid: its pid) and everything it started left running, even
    in other process groups, unless one made a session of its own."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == sid and state != "Z":
            members.append(int(entry.name))
    return members


def manage(env: dict[str, str], *args: str) -> str:
    return bench.gunicorn.manage(env, *args, timeout=120)


def away_from_window_edge(seconds: int) -> None:
    """Start a sequence early in a fixed window, so it cannot straddle two windows."""
    into = time.time() % seconds
    if into > seconds - 5:
        time.sleep(seconds - into + 0.05)
