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


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY"])
def test_healthcheck_takes_no_proxy(served: Served, variable: str) -> None:
    """A container's way out to the internet (http_proxy, HTTP_PROXY) is no way to its own
    server: through a proxy that is down the check was refused and the container unhealthy."""
    proxy = f"http://127.0.0.1:{free_port()}"
    checked = subprocess.run(
        [sys.executable, str(REPO / "bin" / "healthcheck")],
        env={"PORT": served.base.rsplit(":", 1)[1], variable: proxy},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (checked.returncode, checked.stderr) == (0, "")


# 127.0.0.2: Linux routes all of 127/8 to lo, an address other than the default to bind.
@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
def test_healthcheck_checks_the_address_gunicorn_binds(tmp_path: Path, host: str) -> None:
    """HOST names the one address gunicorn listens on: checked at 127.0.0.1, it was refused."""
    hosts = f"{host.strip('[]')},127.0.0.1"
    with entrypoint_server(tmp_path, HOST=host, ALLOWED_HOSTS=hosts) as server:
        checked = subprocess.run(
            [sys.executable, str(REPO / "bin" / "healthcheck")],
            env={"PORT": server.base.rsplit(":", 1)[1], "HOST": host, "ALLOWED_HOSTS": hosts},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert (checked.returncode, checked.stderr) == (0, "")


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
