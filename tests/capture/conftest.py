"""A real server (bin/entrypoint, gunicorn, 2 workers) with the capture demo page on."""

from collections.abc import Iterator

import pytest

from tests.servers.entrypoint import Served, entrypoint_server


@pytest.fixture(scope="session")
def demo_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("capture-server")
    with entrypoint_server(work, CAPTURE_DEMO="1", LOG_LEVEL="INFO") as server:
        yield server
