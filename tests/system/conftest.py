"""Real servers started through bin/entrypoint (as the image does), one per session, shared by
the system tests that ask for them."""

from collections.abc import Generator, Iterator

import pytest

from tests.browser import take_violations
from tests.conftest import skip_or_fail
from tests.servers.entrypoint import Served, entrypoint_server
from tests.servers.postgres import PrivatePostgres, private_postgres


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test whose chromium pages met a Content-Security-Policy violation fails, with each
    violation (tests/browser.py); a test that expects some takes them itself."""
    take_violations()
    result = yield  # the test call's own result, passed on
    found = take_violations()
    if found:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(found), pytrace=False)
    return result


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """bin/entrypoint serve: migrates a fresh SQLite database, checks models, runs gunicorn."""
    work = tmp_path_factory.mktemp("entrypoint")
    with entrypoint_server(work, METRICS_TOKEN="test-metrics-token", LOG_LEVEL="DEBUG") as server:
        yield server


@pytest.fixture(scope="session")
def demo_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The same with the capture demo page on."""
    work = tmp_path_factory.mktemp("capture-server")
    with entrypoint_server(work, CAPTURE_DEMO="1", LOG_LEVEL="INFO") as server:
        yield server


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the module's own (its tests stop and start it); one that cannot
    be started here skips them, and fails them under CI."""
    with private_postgres() as found:
        if isinstance(found, str):
            skip_or_fail(found)
        yield found
