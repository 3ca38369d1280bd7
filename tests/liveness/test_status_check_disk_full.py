"""A full database (issue 9, item 5): checks answer 503 and so does /status_check, until there
is room again. SQLite's ``max_page_count`` gives the real SQLITE_FULL "database or disk is
full" that a full disk gives, without mounting anything (a real full disk under gunicorn:
tests/system/test_status_check_disk_full.py)."""

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.models import Tenant
from liveness import runtime
from liveness.models import LivenessCheck
from telemetry.logs import DropOutageAnswers
from tests.conftest import LIVE_JPG, Post, data_uri

UNLIMITED_PAGES = 1073741823  # SQLite's default max_page_count
PROBES = 10


def _pragma(statement: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {statement}")
        return int(cursor.fetchone()[0])


def _fill(tenant: Tenant) -> int:
    """Cap the file at its current size and insert check rows until one no longer fits."""
    _pragma(f"max_page_count = {_pragma('page_count')}")
    for written in range(100_000):
        try:
            with transaction.atomic():
                LivenessCheck.objects.create(tenant=tenant, latency_ms=1.0)
        except DatabaseError as exc:
            assert "full" in str(exc)
            return written
    raise AssertionError("the database never filled up")


@pytest.fixture
def full_database(db: None) -> Iterator[None]:
    if connection.vendor != "sqlite":
        pytest.skip("max_page_count is SQLite's")
    runtime.forget()
    yield
    _pragma(f"max_page_count = {UNLIMITED_PAGES}")
    runtime.forget()


def test_full_database_refuses_checks_and_readiness_until_there_is_room(
    full_database: None,
    warm_engine: None,
    client: Any,
    post_liveness: Post,
    tenant: tuple[Tenant, str],
) -> None:
    owner, hash_id = tenant
    body = {"hash_id": hash_id, "selfie_image": data_uri(LIVE_JPG)}
    assert client.get("/status_check").status_code == 200
    _fill(owner)
    runtime.forget()  # the success is remembered for a few seconds

    refused = post_liveness(body)
    assert (refused.status_code, refused["Retry-After"]) == (503, "1")
    status = client.get("/status_check")
    assert (status.status_code, status.content.decode()) == (503, runtime.DB_FULL)
    owner.refresh_from_db()
    assert owner.requests_used == 0  # the unit went with the record that did not fit

    _pragma(f"max_page_count = {UNLIMITED_PAGES}")  # room again
    assert client.get("/status_check").status_code == 200
    assert post_liveness(body).status_code == 201


def test_a_full_database_is_logged_once_per_worker_until_there_is_room(
    full_database: None,
    warm_engine: None,
    client: Any,
    tenant: tuple[Tenant, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each probe of a full database logged a WARNING (one a second per worker with kubelet's
    probes, for as long as the disk stayed full): now the first, then DEBUG, then one INFO."""
    assert client.get("/status_check").status_code == 200
    _fill(tenant[0])
    runtime.forget()
    caplog.set_level("DEBUG", logger=runtime.log.name)
    for _ in range(PROBES):
        assert client.get("/status_check").status_code == 503
    _pragma(f"max_page_count = {UNLIMITED_PAGES}")  # room again
    assert client.get("/status_check").status_code == 200
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == runtime.log.name]
    assert [level for level, _ in said] == ["WARNING", *["DEBUG"] * (PROBES - 1), "INFO"]
    assert said[0][1].startswith("a check could not be recorded: database or disk is full")
    assert said[-1][1] == "checks can be recorded again"


def test_checks_refused_by_a_full_database_add_no_error_line(
    full_database: None,
    warm_engine: None,
    post_liveness: Post,
    tenant: tuple[Tenant, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each /liveness a full disk refused logged two ERROR lines (ours, "database unavailable",
    and Django's "Service Unavailable"): now the worker's one WARNING while it lasts, then
    DEBUG, as for an outage; Django's record is dropped by the filter the log handlers carry."""
    owner, hash_id = tenant
    _fill(owner)
    runtime.forget()
    caplog.set_level("DEBUG")
    for _ in range(3):
        assert (
            post_liveness({"hash_id": hash_id, "selfie_image": data_uri(LIVE_JPG)}).status_code
            == 503
        )
    kept = [
        r for r in caplog.records if r.levelno >= logging.INFO and DropOutageAnswers().filter(r)
    ]
    said = [(r.name, r.levelname) for r in kept if r.name != "facia.request"]
    assert said == [(runtime.log.name, "WARNING")]
    assert (
        kept[0].getMessage().startswith("a check could not be recorded: database or disk is full")
    )
