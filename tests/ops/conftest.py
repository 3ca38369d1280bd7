"""A real server started through bin/entrypoint (as the image does), shared by these tests."""

from collections.abc import Iterator

import pytest

from tests.servers.entrypoint import Served, entrypoint_server


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """bin/entrypoint serve: migrates a fresh SQLite database, checks models, runs gunicorn."""
    work = tmp_path_factory.mktemp("entrypoint")
    with entrypoint_server(work, METRICS_TOKEN="test-metrics-token", LOG_LEVEL="DEBUG") as server:
        yield server
