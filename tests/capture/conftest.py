"""A real server (bin/entrypoint, gunicorn, 2 workers) with the capture demo page on."""

import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tests.ops.conftest import ENTRYPOINT, Served, entrypoint_env, wait_live
from tests.servers.processes import free_port, stop


@pytest.fixture(scope="session")
def demo_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("capture-server")
    port = free_port()
    env = entrypoint_env(work, port, CAPTURE_DEMO="1", LOG_LEVEL="INFO")
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ENTRYPOINT), "serve"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_live(base, process)
            yield Served(base, env, log_path)
        finally:
            stop(process)
