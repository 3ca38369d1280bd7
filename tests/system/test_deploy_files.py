"""bin/healthcheck, the image's HEALTHCHECK, against a real server (the deployment files
themselves: tests/deploy/test_deploy_files.py)."""

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.servers.entrypoint import Served
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
