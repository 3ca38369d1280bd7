"""bin/entrypoint serve: the one way the service starts (make serve, the image, the k8s Job), as
a running server (its one-shot commands: tests/deploy/test_entrypoint.py)."""

import subprocess
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.servers.entrypoint import ENTRYPOINT, Served, entrypoint_env, entrypoint_manage
from tests.servers.processes import STARTUP_S, free_port, stop, until
from tests.servers.readonly import read_only

pytestmark = pytest.mark.system


def test_serve_answers_status_check(served: Served) -> None:
    with urllib.request.urlopen(f"{served.base}/status_check", timeout=30) as reply:
        assert reply.read() == b"Service is live"


# docs/operator/deployment.md, Production: the documented environment (SQLite here, not PostgreSQL).
PRODUCTION = {
    "DJANGO_SECURE": "1",
    "ALLOWED_HOSTS": "liveness.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://liveness.example.com",
    "ADMIN_URL": "ops-7f3a9/",
    "WEB_CONCURRENCY": "1",
}


def healthcheck(env: dict[str, str]) -> int:
    done = subprocess.run(
        [str(REPO / "bin" / "healthcheck")], env=env, capture_output=True, timeout=30, check=False
    )
    return done.returncode


def test_healthcheck_passes_under_the_production_environment(tmp_path: Path) -> None:
    env = entrypoint_env(tmp_path, free_port(), **PRODUCTION)
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [str(ENTRYPOINT), "serve"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        until(lambda: process.poll() is not None or healthcheck(env) == 0, timeout=STARTUP_S)
        assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        # The environment is strict: a bare loopback Host is refused.
        bare = requests.get(f"http://127.0.0.1:{env['PORT']}/status_check", timeout=30)
        assert bare.status_code == 400
    finally:
        stop(process)


def unavailable(port: str) -> bool:
    """/status_check answers 503 for the database (the worker is warm: not "starting")."""
    try:
        reply = requests.get(
            f"http://127.0.0.1:{port}/status_check", timeout=30, headers={"Host": "localhost"}
        )
    except requests.ConnectionError:
        return False
    return reply.status_code == 503 and "starting" not in reply.text


def test_a_read_only_sqlite_file_is_said_once_at_start(tmp_path: Path) -> None:
    """Migrations skipped (MIGRATE_ON_START=0), the database file read-only: each worker's
    probe logged "a check could not be recorded: attempt to write a readonly database" and
    /status_check said 503 "Cannot record checks (database or disk full, or read-only)",
    neither naming the file."""
    env = entrypoint_env(tmp_path, free_port(), MIGRATE_ON_START="0", WEB_CONCURRENCY="1")
    database = tmp_path / "db.sqlite3"
    subprocess.run([str(ENTRYPOINT), "migrate"], cwd=REPO, env=env, check=True, timeout=120)
    entrypoint_manage(env, "create_tenant", "ro")  # with none, no check is to be recorded
    log_path = tmp_path / "server.log"
    said = f"database sqlite:///{database} cannot be written: its file {database} is on a read-only"
    with log_path.open("wb") as log:
        command = [*read_only(database), str(ENTRYPOINT), "serve"]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        until(lambda: process.poll() is not None or unavailable(env["PORT"]), STARTUP_S)
        assert process.poll() is None, log_path.read_text()[-3000:]
    finally:
        stop(process)
    assert said in log_path.read_text()
    assert log_path.read_text().count("cannot be written") == 1
