"""bin/entrypoint: the one way the service starts (make serve, the image, the k8s Job)."""

import json
import runpy
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.servers.entrypoint import ENTRYPOINT, Served, entrypoint_env
from tests.servers.processes import STARTUP_S, free_port, stop, until


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRYPOINT), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    env = entrypoint_env(tmp_path, 0)
    assert run(env, "migrate").returncode == 0
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert {"accounts_tenant", "accounts_hashid", "liveness_livenesscheck"} <= tables


def test_install_models_is_a_no_op_when_present(tmp_path: Path) -> None:
    # As in the image: MODEL_SOURCE does not exist, the installed models are used as they are.
    env = entrypoint_env(tmp_path, 0, MODEL_SOURCE=str(tmp_path / "absent"))
    done = run(env, "install-models")
    assert done.returncode == 0, done.stderr
    assert "already up to date" in json.loads(done.stdout)["message"]


@pytest.mark.parametrize(("log_format", "plain"), [("json", False), (" Plain ", True)])
def test_set_up_output_follows_log_format_as_django_reads_it(
    tmp_path: Path, log_format: str, plain: bool
) -> None:
    env = entrypoint_env(tmp_path, 0, MODEL_SOURCE=str(tmp_path / "absent"), LOG_FORMAT=log_format)
    done = run(env, "install-models")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "already up to date" in line
    assert line.startswith("{") is not plain


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    done = run(entrypoint_env(tmp_path, 0), "bogus")
    assert done.returncode == 2
    assert "usage: bin/entrypoint" in done.stderr


def test_bind_address_from_host_and_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_123.db").write_bytes(b"stale")
    config = runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    assert config["bind"] == "0.0.0.0:8123"
    assert list((tmp_path / "metrics").iterdir()) == []  # emptied at start


def test_serve_answers_status_check(served: Served) -> None:
    with urllib.request.urlopen(f"{served.base}/status_check", timeout=30) as reply:
        assert reply.read() == b"Service is live"


# README, Production: the documented environment (SQLite here instead of PostgreSQL).
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
