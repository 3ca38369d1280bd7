"""bin/entrypoint serve: the one way the service starts (make serve, the image, the k8s Job), as
a running server (its one-shot commands: tests/deploy/test_entrypoint.py)."""

import subprocess
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.servers.entrypoint import ENTRYPOINT, Served, entrypoint_env
from tests.servers.processes import STARTUP_S, free_port, stop, until

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
