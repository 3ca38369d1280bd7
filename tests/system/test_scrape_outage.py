"""/metrics scraped while PostgreSQL hangs (a private cluster SIGSTOPped), behind a real
gunicorn: a scrape waits on the database once, its readiness probe's wait, not once more for
each of console's queries (the tenants' names, their quotas), and each of those says once per
outage what it left out, then DEBUG. Each query asked the hung database again: three waits of
DATABASE_TIMEOUT_S a scrape (9 s with the default 3 s, 15 s with 5 s: past Prometheus' 10 s
scrape_timeout, which loses the whole scrape, facia_worker_ready=0 with it), and a WARNING per
query per scrape."""

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.servers.clients import create_tenant
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.postgres import PrivatePostgres
from tests.servers.processes import until

pytestmark = pytest.mark.system

TIMEOUT_S = 2  # DATABASE_TIMEOUT_S, small: each wait costs the test that long
SCRAPES = 3
COLLECTORS = "console.collectors"
# console.collectors.DOWN: a line that ends so did not ask the database.
DOWN = "the database did not answer this worker's last try"


@pytest.fixture(scope="module")
def server(
    cluster: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    work = tmp_path_factory.mktemp("scrape-outage")
    env = {
        "DATABASE_URL": cluster.url,
        "DATABASE_TIMEOUT_S": str(TIMEOUT_S),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }
    with gunicorn(work, 1, **env) as running:
        yield running


def records(server: Gunicorn, since: int) -> list[dict[str, Any]]:
    found = []
    for line in server.log.read_text(errors="replace").splitlines()[since:]:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def test_a_scrape_waits_once_on_a_hung_database_and_says_so_once(
    server: Gunicorn, cluster: PrivatePostgres
) -> None:
    create_tenant(server.env, f"t-{uuid.uuid4().hex[:10]}", None)
    assert "facia_tenant_requests_used{" in requests.get(f"{server.base}/metrics", timeout=30).text
    start = len(server.log.read_text(errors="replace").splitlines())
    asked: list[list[str]] = []
    seconds: list[float] = []
    with cluster.frozen():
        for _ in range(SCRAPES):
            since = len(server.log.read_text(errors="replace").splitlines())
            began = time.monotonic()
            scrape = requests.get(f"{server.base}/metrics", timeout=60)
            seconds.append(time.monotonic() - began)
            assert scrape.status_code == 200
            assert "facia_worker_ready{" in scrape.text
            assert "facia_tenant_requests_used{" not in scrape.text
            # console's queries that asked the database (their line gives its error), not
            # left out as the last try found it down.
            asked.append(
                [
                    r["message"]
                    for r in records(server, since)
                    if r["name"] == COLLECTORS and not r["message"].endswith(DOWN)
                ]
            )
    print(f"\nscrapes of a hung database: {[f'{s:.1f} s' for s in seconds]}, asked {asked}")
    during = records(server, start)
    # The probe's wait, or the first query's when the probe's last success is still
    # remembered (CACHE_S): never the quota query after either, never a second wait.
    assert all(len(messages) <= 1 for messages in asked), asked
    assert not any("quota" in message for messages in asked for message in messages), asked
    said = [(r["levelname"], r["message"]) for r in during if r["name"] == COLLECTORS]
    # Both of console's lines, once as a WARNING each, then DEBUG.
    assert [level for level, _ in said].count("WARNING") == 2, said
    assert len(said) == 2 * SCRAPES, said
    until(lambda: server.status() == 200, timeout=60)
    assert "facia_tenant_requests_used{" in requests.get(f"{server.base}/metrics", timeout=30).text
