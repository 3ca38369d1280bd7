"""No core file from a crashing server process: an HTTP worker's memory holds raw hash_ids and
selfies (its core file was 480 MB of them, in its working directory), the task worker's the
calibration zips. The rule: no secret and no image is ever written to disk."""

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.gunicorn import TASK_WORKER_NAME
from tests.conftest import REPO
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import Gunicorn, migrated_env
from tests.servers.processes import STARTUP_S, children, stop, until

pytestmark = pytest.mark.system


def core_limit(pid: int) -> tuple[str, str]:
    """The soft and hard "Max core file size" of /proc/PID/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError(f"no core limit in /proc/{pid}/limits")


def allow_core_files() -> None:
    """As `ulimit -c unlimited` (up to the hard limit) before the server starts: a shell or
    unit that allows core files, which the server must not inherit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Gunicorn]:
    """gunicorn with one HTTP worker, started as `make serve` does but with core files allowed
    and its working directory (where a core file of the default core_pattern goes) in
    ``tmp_path``/cwd."""
    env = {**migrated_env(tmp_path, 1), "PYTHONPATH": str(REPO)}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "facia_site/gunicorn.conf.py")]
            + ["facia_site.wsgi"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=allow_core_files,
        )
    started = Gunicorn(process, int(env["PORT"]), env, log)
    try:
        started.wait_workers(1)
        yield started
    finally:
        stop(process)


def task_workers(master: int) -> list[int]:
    """The task worker (named facia-tasks) and its parent, gunicorn's dirty arbiter."""
    found = []
    for process in {grandchild for pid in children(master) for grandchild in children(pid)}:
        try:
            name = Path(f"/proc/{process}/comm").read_text().strip()
        except OSError:
            continue  # gone meanwhile
        if name == TASK_WORKER_NAME:
            found.append(process)
    arbiters = [pid for pid in children(master) if any(c in found for c in children(pid))]
    return found + arbiters


def test_no_server_process_may_write_a_core_file(server: Gunicorn) -> None:
    """Started allowed to (ulimit -c unlimited), the master, each HTTP worker, the dirty
    arbiter and the task worker may write no core file, nor raise the limit again."""
    until(lambda: len(task_workers(server.process.pid)) == 2, timeout=STARTUP_S)
    processes = [server.process.pid, *server.workers(), *task_workers(server.process.pid)]
    assert len(processes) == 4
    assert {pid: core_limit(pid) for pid in processes} == {pid: ("0", "0") for pid in processes}


def test_a_crashing_worker_leaves_no_core_file(server: Gunicorn, tmp_path: Path) -> None:
    """A worker that has served a check with a hash_id, killed by SIGSEGV: no core file (one of
    ~480 MB holding the hash_id and the base64 selfie, before)."""
    hash_id = create_tenant(server.env, "cores")
    assert post(server.base, selfie_body(hash_id), "crash-1").status == 201
    (worker,) = server.workers()
    os.kill(worker, signal.SIGSEGV)
    # A core file is written before the worker is reaped, so before its replacement serves.
    until(lambda: worker not in server.workers(), timeout=120, every=0.02)
    server.wait_workers(1)
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    # The default pattern ("core", core.PID with core_uses_pid) writes into the worker's
    # working directory; a piped one (systemd-coredump, apport) is handed the limit and
    # honours 0, an absolute one writes elsewhere: the limit below covers both.
    assert list((tmp_path / "cwd").iterdir()) == [], pattern
    assert core_limit(server.workers()[0]) == ("0", "0")
