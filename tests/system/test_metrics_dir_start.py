"""A start refused for its PROMETHEUS_MULTIPROC_DIR, which a server empties at start: one
holding anything but metric samples, one held by a running server. And a start that cannot
bind leaves no temporary directory."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.servers.clients import create_tenant, selfie_body
from tests.servers.entrypoint import ENTRYPOINT, entrypoint_env, entrypoint_manage
from tests.servers.gunicorn import gunicorn, start
from tests.servers.processes import STARTUP_S, free_port, stop, until
from tests.system.test_metrics_lifecycle import ready_pids, served, temporary_dirs, verdicts

pytestmark = pytest.mark.system


def refused(process: subprocess.Popen[bytes], port: int | None) -> int | None:
    """The exit code of a start that must be refused; None (the server stopped) where it
    served instead on ``port`` (None: a port another server answers on, only the exit)."""
    if port is None:
        return process.wait(timeout=STARTUP_S)
    until(
        lambda: (
            process.poll() is not None
            or requests.get(f"http://127.0.0.1:{port}/status_check", timeout=30) is not None
        ),
        timeout=STARTUP_S,
    )
    if process.poll() is None:
        stop(process)
        return None
    return process.returncode


def error_records(log: Path) -> list[str]:
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [record["message"] for record in records if record["levelname"] == "ERROR"]


def test_a_directory_holding_the_database_is_not_emptied(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR pointed at the SQLite database's directory: a start deleted
    every ``*.db`` there, the database and its tenants with them, and served an empty one.
    The start is refused, naming the directory; the database keeps its tenant."""
    data = tmp_path / "pm"
    data.mkdir()
    port = free_port()
    env = entrypoint_env(
        tmp_path,
        port,
        DATABASE_URL=f"sqlite:///{data / 'facia.db'}",
        PROMETHEUS_MULTIPROC_DIR=str(data),
        MIGRATE_ON_START="0",
    )
    entrypoint_manage(env, "migrate", "-v0")
    entrypoint_manage(env, "create_tenant", "keepme")
    (data / "counter_4242.db").write_bytes(b"")  # a previous run's sample file
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ENTRYPOINT), "serve"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    code = refused(process, port)
    assert (data / "facia.db").exists()
    with closing(sqlite3.connect(data / "facia.db")) as database:
        assert database.execute("SELECT name FROM accounts_tenant").fetchall() == [("keepme",)]
    assert code not in (None, 0)
    (message,) = error_records(log)
    assert f"PROMETHEUS_MULTIPROC_DIR={data} holds files that are not metric samples" in message
    assert "facia.db" in message


@pytest.mark.parametrize("same_port", [True, False], ids=["its port", "another port"])
def test_a_second_start_on_a_running_servers_directory_is_refused(
    tmp_path: Path, same_port: bool
) -> None:
    """A second server given a running one's PROMETHEUS_MULTIPROC_DIR: on its port (a
    mistyped `docker exec c bin/entrypoint`) it emptied the directory before failing to bind,
    the running server's /metrics at 0 samples, readiness gauges included, until its workers
    were replaced; on another port it served, and each server's scrape summed both servers'
    samples. It is refused with one ERROR record naming the directory; the running server's
    samples stay; a start once that server has stopped empties it."""
    metrics = tmp_path / "metrics"
    with gunicorn(tmp_path, 1, PROMETHEUS_MULTIPROC_DIR=str(metrics)) as server:
        body = selfie_body(create_tenant(server.env, "kept"))
        served(server, body, "first", 2)
        second = tmp_path / "second"
        second.mkdir()
        port = server.port if same_port else free_port()
        late = start({**server.env, "PORT": str(port), "LOG_FORMAT": "json"}, second)
        assert refused(late.process, None if same_port else port) not in (None, 0)
        (message,) = error_records(late.log)
        assert f"PROMETHEUS_MULTIPROC_DIR={metrics} is in use by another running server" in message
        assert verdicts(server, "kept") == 2
        assert set(ready_pids(server)) == set(server.workers())
    assert list(metrics.glob("*.db"))
    with gunicorn(tmp_path, 1, PROMETHEUS_MULTIPROC_DIR=str(metrics)) as server:
        assert verdicts(server, "kept") == 0


def test_a_start_that_cannot_bind_leaves_no_temporary_directory(tmp_path: Path) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR each server makes a temporary directory; a master that
    cannot bind exits before gunicorn's on_exit, which left one empty directory per try."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with gunicorn(tmp_path, 1) as server:
            pass  # migrates the database, and shows a start's directory removed at its exit
        assert temporary_dirs(tmp_path) == []
        late = start({**server.env, "PORT": str(port)}, tmp_path)
        assert late.process.wait(timeout=STARTUP_S) != 0
        assert "Connection in use" in late.log.read_text()
    assert temporary_dirs(tmp_path) == []


def test_a_volume_root_is_taken_and_its_directories_kept(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR at a dedicated volume's root: its ``lost+found`` directory
    refused the start ("holds files that are not metric samples (lost+found)"). Directories
    are nobody's samples: the start takes the directory, deletes a previous run's sample
    files, and leaves every directory and what it holds as they were."""
    volume = tmp_path / "volume"
    (volume / "lost+found").mkdir(parents=True)
    (volume / "lost+found" / "#1234").write_bytes(b"recovered")
    (volume / "counter_4242.db").mkdir()  # a directory named like a sample file
    (volume / "gauge_livesum_4242.db").write_bytes(b"")  # a previous run's sample file
    prepared = subprocess.run(
        [
            sys.executable,
            "-c",
            "from telemetry.gunicorn import prepare_metrics_dir; print(prepare_metrics_dir())",
        ],
        cwd=REPO,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(volume)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.strip() == str(volume)
    assert (volume / "lost+found" / "#1234").read_bytes() == b"recovered"
    assert (volume / "counter_4242.db").is_dir()
    assert not (volume / "gauge_livesum_4242.db").exists()
