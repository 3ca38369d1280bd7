"""bin/healthcheck, the image's HEALTHCHECK, against a real server (the deployment files
themselves: tests/deploy/test_deploy_files.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.servers.entrypoint import Served, entrypoint_server
from tests.servers.processes import free_port

pytestmark = pytest.mark.system


def test_healthcheck_script(served: Served) -> None:
    port = served.base.rsplit(":", 1)[1]
    ok = subprocess.run(
        [sys.executable, str(REPO / "bin" / "healthcheck")],
        env={"PORT": port},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0
    down = subprocess.run(
        [sys.executable, str(REPO / "bin" / "healthcheck")],
        env={"PORT": str(free_port())},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert down.returncode == 1


def test_healthcheck_brackets_a_bare_ipv6_host(tmp_path: Path) -> None:
    """An IPv6 pod address first in ALLOWED_HOSTS (settings accept it bare): the script sends
    it as "[::1]", which Django accepts; sent bare it got 400 and the container was unhealthy."""
    hosts = "::1,127.0.0.1"
    with entrypoint_server(tmp_path, ALLOWED_HOSTS=hosts) as server:
        checked = subprocess.run(
            [sys.executable, str(REPO / "bin" / "healthcheck")],
            env={"PORT": server.base.rsplit(":", 1)[1], "ALLOWED_HOSTS": hosts},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert (checked.returncode, checked.stderr) == (0, "")
