"""Stopping and restarting a real gunicorn at awkward moments: a SIGTERM that reaches an HTTP
worker still loading its engine or the task worker still starting, a task worker whose parent
(gunicorn's dirty arbiter) was killed, and SIGUSR2 (a new master in place of the old)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn import __version__ as gunicorn_version

from tests.conftest import REPO
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn, migrated_env, start
from tests.servers.processes import STARTUP_S, children, until

pytestmark = pytest.mark.system


def records(log: Path) -> list[dict[str, object]]:
    """The server's JSON log records so far (a line still being written is left out)."""
    found = []
    for line in log.read_text().splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found


def loading_worker(log: Path) -> int:
    """The pid of a worker that has logged the start of its engine load (post_fork)."""
    for record in records(log):
        if str(record["message"]).startswith("loading liveness engine from "):
            return int(str(record["process"]))
    return 0


def test_sigterm_while_a_worker_loads_its_engine_stops_it_at_once(tmp_path: Path) -> None:
    """The worker ran its post_fork (the engine's load and warm-up, ~2 s, far longer with a cold
    compile cache) under the master's signal handlers, inherited at fork: a SIGTERM then only
    queued itself in the worker's copy of the master's queue, and was lost. The worker booted,
    served, and the master, stopping, waited its whole graceful timeout (30 s) before killing
    it with SIGKILL: the stop took 30 s instead of ~1 s (longer than `docker stop`'s 10 s)."""
    server = start(migrated_env(tmp_path, 1), tmp_path)
    try:
        until(lambda: loading_worker(server.log) != 0, timeout=STARTUP_S, every=0.01)
        worker = loading_worker(server.log)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=STARTUP_S) == 0
    finally:
        server.stop()
    exits = [r["message"] for r in records(server.log) if r["process"] == worker]
    # Its own exit, not the master's SIGKILL after the graceful timeout.
    assert f"Worker exiting (pid: {worker})" in exits


def blocked(pid: int, signum: int) -> bool:
    """Whether ``pid`` blocks ``signum`` (SigBlk of /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(
        next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
    )
    return bool(mask & (1 << (signum - 1)))


def test_sigterm_before_the_master_has_its_handlers_stops_it_gracefully(tmp_path: Path) -> None:
    """bin/entrypoint execs python -m facia_site.serve, which execs gunicorn: until gunicorn's
    master installs its handlers a SIGTERM met the default action. As PID 1 (the image's
    entrypoint) the kernel drops such a signal: 3 of 8 sent 1.8-2.0 s after a start were lost,
    the server went on to serve, and `docker stop` waited out its grace period. The stop
    signals are blocked from facia_site.serve on, so one sent then waits for the master's
    handler: a graceful stop (exit 0), never the default action's death by the signal."""
    env = migrated_env(tmp_path, 1)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "facia_site.serve"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    try:
        until(lambda: blocked(process.pid, signal.SIGTERM), timeout=STARTUP_S, every=0.002)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STARTUP_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Handling signal: term" in log.read_text()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_task_worker_whose_arbiter_is_killed_exits(tmp_path: Path) -> None:
    """gunicorn's dirty arbiter watches its own parent, but its workers do not: the arbiter
    killed (SIGKILL, the OOM killer), the master starts a new arbiter and task worker, and the
    old task worker, init's child, must not poll the database every second for good, past the
    server's own stop (seen 28 s after it, still running, without the parent-death signal)."""
    with gunicorn(tmp_path, 1) as server:
        (arbiter,) = [pid for pid in children(server.process.pid) if pid not in server.workers()]
        (task_worker,) = children(arbiter)
        os.kill(arbiter, signal.SIGKILL)
        # Its graceful stop took 1 to 6 s here; the bound only guards against a hang.
        until(lambda: not alive(task_worker), timeout=120, every=0.05)
        until(lambda: any(map(children, new_arbiters(server, arbiter))), timeout=STARTUP_S)
        assert server.status() == 200


def new_arbiters(server: Gunicorn, old: int) -> list[int]:
    return [
        pid for pid in children(server.process.pid) if pid not in server.workers() and pid != old
    ]


def logged_by_a_task_worker(log: Path, message: str) -> int:
    """The pid of a process that logged ``message`` (a task worker's record), else 0."""
    return next((int(str(r["process"])) for r in records(log) if r["message"] == message), 0)


def test_sigterm_while_the_task_worker_starts_stops_it_at_once(tmp_path: Path) -> None:
    """A SIGTERM that reaches the task worker during its Django set-up (~2 s after each start)
    only sets a flag its loop never reads: unchecked, it would serve on, and the stopping
    master wait its 30 s graceful_timeout, then SIGKILL the dirty arbiter (which never reaps
    it) and leave the task worker running, init's child."""
    server = start(migrated_env(tmp_path, 1), tmp_path)
    try:
        until(
            lambda: logged_by_a_task_worker(server.log, "task worker loading") != 0,
            timeout=STARTUP_S,
            every=0.01,
        )
        task_worker = logged_by_a_task_worker(server.log, "task worker loading")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=STARTUP_S) == 0
    finally:
        server.stop()
    # The arbiter reaped it: it exited on its own, not with the arbiter's SIGKILL.
    reaped = f"Dirty worker exited (pid:{task_worker})"
    assert any(r["message"] == reaped for r in records(server.log))
    until(lambda: not alive(task_worker), timeout=120, every=0.05)


def started_master(log: Path, other_than: int) -> int:
    """The pid of a gunicorn master, not ``other_than``, that has logged its start."""
    starts = [r for r in records(log) if r["message"] == f"Starting gunicorn {gunicorn_version}"]
    return next((pid for r in starts if (pid := int(str(r["process"]))) != other_than), 0)


def test_sigusr2_starts_a_new_master_that_serves_after_the_old_one(tmp_path: Path) -> None:
    """SIGUSR2 (gunicorn's upgrade in place: a new master on the same socket, then the old one
    stopped). The new master must start: run as ``python .../gunicorn/__main__.py``, gunicorn's
    own ``http`` package hides the standard library's, it cannot read its configuration (an
    11-line traceback, not a JSON record) and exits, while the old master serves on."""
    with gunicorn(tmp_path, 1) as server:
        body = selfie_body(create_tenant(server.env, "upgraded"))
        assert post(server.base, body, "before").status == 201
        old = server.process.pid
        server.process.send_signal(signal.SIGUSR2)
        until(lambda: started_master(server.log, old) != 0, timeout=120, every=0.05)
        new = started_master(server.log, old)
        try:
            assert server.stop() == 0
            until(lambda: server.status() == 200, timeout=STARTUP_S)
            assert post(server.base, body, "after").status == 201
        finally:
            os.kill(new, signal.SIGTERM)
            until(lambda: not alive(new), timeout=120, every=0.05)
    lines = server.log.read_text().splitlines()
    assert len(records(server.log)) == len(lines)  # every line a JSON record


def test_sighup_replaces_the_task_worker_once(tmp_path: Path) -> None:
    """SIGHUP: gunicorn's dirty arbiter spawned a new task worker and then stopped it (its
    reload stops the workers after the first ``dirty_workers`` in start order, the new ones),
    its count check the old one, and started a third. One new worker now replaces the old."""
    with gunicorn(tmp_path, 1) as server:
        until(lambda: task_workers_listening(server.log) != [], timeout=STARTUP_S)
        (old,) = task_workers_listening(server.log)
        server.process.send_signal(signal.SIGHUP)
        until(
            lambda: (
                f"Dirty worker exited (pid:{old})" in since_hup(server.log)
                and task_workers_listening(server.log) != [old]
            ),
            timeout=STARTUP_S,
            every=0.05,
        )
        after = since_hup(server.log)
    spawned = [m for m in after if m.startswith("Spawned dirty worker")]
    exited = [m for m in after if m.startswith("Dirty worker exited")]
    assert len(spawned) == 1 and exited == [f"Dirty worker exited (pid:{old})"], after


def since_hup(log: Path) -> list[str]:
    """The messages logged after the master's first SIGHUP, in order."""
    messages = [str(r["message"]) for r in records(log)]
    if "Handling signal: hup" not in messages:
        return []
    return messages[messages.index("Handling signal: hup") + 1 :]


def task_workers_listening(log: Path) -> list[int]:
    """The task workers that logged they listen, in order, the latest last."""
    return [
        int(str(r["process"]))
        for r in records(log)
        if str(r["message"]).startswith(f"Dirty worker {r['process']} listening on ")
    ]
