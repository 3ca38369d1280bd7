"""What a copy of the SQLite database holds when taken while gunicorn answers /liveness:
``cp db.sqlite3``, ``cp db.sqlite3 db.sqlite3-wal`` (the files together) and ``manage.py
backup``, each compared with the checks answered 201 before it started (docs:
operator/deployment.md, Backup, restore and upgrade).

    python -m bench.sqlite_copy [--copies 20] [--every 30] [--clients 4]

Prints one row per round and a summary; asserts nothing."""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.gunicorn import served, until
from bench.images import REPO, selfie_body
from bench.threads import Threads

TENANT = "copied"


class Load(Threads):
    """Clients posting the tests' live selfie until stopped; the 201s counted."""

    def __init__(self, base: str, body: bytes, clients: int) -> None:
        super().__init__()
        self.base, self.body = base, body
        self.answered = 0
        self.lock = threading.Lock()
        for _ in range(clients):
            self.spawn(self.client)

    def client(self) -> None:
        while not self.stopping.is_set():
            reply = requests.post(f"{self.base}/liveness", data=self.body, timeout=60)
            if reply.status_code == 201:
                with self.lock:
                    self.answered += 1

    def count(self) -> int:
        with self.lock:
            return self.answered

    def wait_for(self, answered: int) -> None:
        until(lambda: self.count() >= answered, timeout=600)


@dataclass(frozen=True)
class Held:
    """What one copy holds: integrity_check's first line, then the tenant's requests_used
    and its check records with a unit (None: no such tenant in the copy)."""

    integrity: str
    used: int | None
    checks: int | None

    def __str__(self) -> str:
        found = "no tenant" if self.used is None else f"{self.used} used/{self.checks} checks"
        return f"{self.integrity}, {found}"


def held(path: Path) -> Held:
    with closing(sqlite3.connect(path)) as db:
        (integrity,) = db.execute("PRAGMA integrity_check").fetchone()
        row = db.execute(
            "SELECT requests_used, (SELECT count(*) FROM liveness_livenesscheck c "
            "WHERE c.tenant_id = t.id AND c.refused_code = '') "
            "FROM accounts_tenant t WHERE name = ?",
            [TENANT],
        ).fetchone()
    return Held(integrity, *(row or (None, None)))


def summary(name: str, rounds: list[tuple[int, Held]]) -> str:
    """How many copies failed integrity_check, held no tenant, or lost answered checks."""
    bad = sum(found.integrity != "ok" for _, found in rounds)
    apart = sum(found.used != found.checks for _, found in rounds)
    missing = sum(found.used is None for _, found in rounds)
    short = [before - (found.used or 0) for before, found in rounds]
    lost = [gap for gap in short if gap > 0]
    return (
        f"{name}: {len(rounds)} copies, {bad} failing integrity_check, {apart} with units "
        f"apart from checks, {missing} without the tenant, {len(lost)} short of the checks "
        f"answered before (by up to {max(lost, default=0)})"
    )


def copies(database: Path, folder: Path, backup: Callable[[Path], object]) -> dict[str, Path]:
    """The three copies of ``database`` in ``folder``, one after the other."""
    plain, both, made = folder / "cp", folder / "cp-wal", folder / "backup"
    for place in (plain, both, made):
        place.mkdir(parents=True)
    subprocess.run(["cp", str(database), str(plain)], check=True)
    wal = database.with_name(database.name + "-wal")
    subprocess.run(["cp", str(database), str(wal), str(both)], check=True)
    backup(made / database.name)
    return {"cp db.sqlite3": plain, "cp with -wal": both, "manage.py backup": made}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--every", type=int, default=30, help="201s between two rounds")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, served(REPO, Path(scratch), workers=2) as s:
        work = Path(scratch)
        body = selfie_body(s.create_tenant(TENANT))
        database = work / "db.sqlite3"
        rounds: dict[str, list[tuple[int, Held]]] = {}
        with Load(s.base, body, args.clients) as load:
            for k in range(args.copies):
                load.wait_for(args.every * (k + 1))
                before = load.count()
                found = copies(database, work / f"round-{k}", lambda p: s.manage("backup", str(p)))
                for name, place in found.items():
                    rounds.setdefault(name, []).append((before, held(place / database.name)))
                shown = "; ".join(f"{name}: {rounds[name][-1][1]}" for name in found)
                print(f"{before} answered before: {shown}", flush=True)
        for name, taken in rounds.items():
            print(summary(name, taken))


if __name__ == "__main__":
    main()
