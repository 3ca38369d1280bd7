"""The database's own view of the quota ledger, and the exactness check against what clients saw."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tests.servers.clients import Outcome


@dataclass(frozen=True)
class Ledger:
    requests_used: int
    consuming: list[str]  # request ids of checks that took a unit
    refused: list[str]  # request ids of checks refused by the engine (no unit)


def ledger(database_url: str, tenant_name: str) -> Ledger:
    query_used = "SELECT requests_used FROM accounts_tenant WHERE name = {p}"
    query_checks = (
        "SELECT c.request_id, c.refused_code FROM liveness_livenesscheck c "
        "JOIN accounts_tenant t ON t.id = c.tenant_id WHERE t.name = {p}"
    )
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            (used,) = db.execute(query_used.format(p="?"), [tenant_name]).fetchone()
            rows = db.execute(query_checks.format(p="?"), [tenant_name]).fetchall()
    else:
        import psycopg

        with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as db:
            row = db.execute(query_used.format(p="%s"), [tenant_name]).fetchone()
            assert row is not None, tenant_name
            used = row[0]
            rows = db.execute(query_checks.format(p="%s"), [tenant_name]).fetchall()
    return Ledger(
        used,
        [request_id for request_id, code in rows if not code],
        [request_id for request_id, code in rows if code],
    )


def assert_ledger_exact(outcomes: list[Outcome], book: Ledger) -> None:
    """Every 201 a client saw has exactly one consuming record; requests_used counts them all."""
    seen = [o.request_id for o in outcomes if o.status == 201]
    assert all(book.consuming.count(request_id) == 1 for request_id in seen)
    assert book.requests_used == len(book.consuming)
