"""``bin/entrypoint manage backup`` while bin/entrypoint serve answers /liveness for two tenants
(one reaching its quota): every backup passes PRAGMA integrity_check, each tenant's
requests_used equals its check records that took a unit, and every check answered 201 before
the backup started is in it. ``cp db.sqlite3`` under the same traffic held none of the last
checkpoint's checks (docs/operator/deployment.md)."""

import sqlite3
import threading
from pathlib import Path

import pytest

from bench.threads import Threads
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.entrypoint import entrypoint_server
from tests.servers.ledger import ledger
from tests.servers.processes import STARTUP_S, until

pytestmark = [pytest.mark.system, pytest.mark.slow]

CAP = 20
LIMITS = {"steady": None, "capped": CAP}
CLIENTS = 4
BACKUPS = 3


class Traffic(Threads):
    """Clients posting selfies for each tenant in turn until stopped; the request ids each
    tenant had answered 201, in the order answered."""

    def __init__(self, base: str, hash_ids: dict[str, str]) -> None:
        super().__init__()
        self.base = base
        self.bodies = [(name, selfie_body(hash_id)) for name, hash_id in hash_ids.items()]
        self.answered: dict[str, list[str]] = {name: [] for name in hash_ids}
        self.lock = threading.Lock()
        for index in range(CLIENTS):
            self.spawn(self.client, index)

    def client(self, index: int) -> None:
        sent = 0
        while not self.stopping.is_set():
            name, body = self.bodies[(index + sent) % len(self.bodies)]
            outcome = post(self.base, body, f"{name}-{index}-{sent}")
            sent += 1
            if outcome.status == 201:
                with self.lock:
                    self.answered[name].append(outcome.request_id)

    def now(self) -> dict[str, list[str]]:
        with self.lock:
            return {name: list(ids) for name, ids in self.answered.items()}

    def total(self) -> int:
        return sum(len(ids) for ids in self.now().values())

    def wait_for(self, answered: int) -> None:
        until(lambda: self.total() >= answered, timeout=STARTUP_S)


def test_backups_under_traffic_hold_every_answered_check(tmp_path: Path) -> None:
    work = tmp_path / "served"
    work.mkdir()
    with entrypoint_server(work) as served:
        hash_ids = {name: create_tenant(served.env, name, limit) for name, limit in LIMITS.items()}
        with Traffic(served.base, hash_ids) as traffic:
            for k in range(BACKUPS):
                traffic.wait_for(25 * (k + 1))
                answered = traffic.now()
                target = tmp_path / f"backup-{k}.sqlite3"
                output = served.manage("backup", str(target))
                during = traffic.total() - sum(map(len, answered.values()))
                assert output.startswith(f"backup: wrote {target} ("), output
                assert during > 0  # the service answered while the backup ran
                with sqlite3.connect(target) as copy:
                    assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                for name, seen in answered.items():
                    book = ledger(f"sqlite:///{target}", name)
                    assert book.requests_used == len(book.consuming) == len(set(book.consuming))
                    assert set(seen) <= set(book.consuming), name
    # Requests alternate between the tenants: "capped" had reached its quota by the last one.
    assert ledger(f"sqlite:///{target}", "capped").requests_used == CAP
