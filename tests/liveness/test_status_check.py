"""GET /status_check: 503 until this process's engine is warmed and the database has every
migration of this code, then 200 ``Service is live``."""

import logging
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Tenant
from facia_site.worker import refresh_readiness
from liveness import runtime
from tests.conftest import LIVE_JPG, Post, data_uri


def test_not_ready_before_warm_up(db: None, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_holder", runtime.EngineHolder())
    response = client.get("/status_check")
    assert response.status_code == 503
    assert response.content != b"Service is live"


def test_live_after_warm_up(db: None, client: Any, warm_engine: None) -> None:
    response = client.get("/status_check")
    assert response.status_code == 200
    assert response.content == b"Service is live"
    assert response["Content-Type"].startswith("text/plain")


def test_warm_up_makes_a_fresh_holder_ready(
    db: None, client: Any, warm_engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "_holder", runtime.EngineHolder())
    assert client.get("/status_check").status_code == 503
    runtime.get_engine()
    assert client.get("/status_check").status_code == 200


def test_post_not_allowed(db: None, client: Any) -> None:
    assert client.post("/status_check").status_code == 405


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_unsafe_methods_get_our_json_405_not_a_csrf_page(db: None, method: str) -> None:
    """As a real client meets it: Django's test client skips the CSRF check by default, and
    under gunicorn a POST must not get CSRF's 403 HTML page (the schema says 405, `Allow`) nor
    Django's empty text/html 405: every other endpoint answers our JSON."""
    response = getattr(Client(enforce_csrf_checks=True), method)("/status_check")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": f'Method "{method.upper()}" not allowed.'}


def test_get_and_head_answer_as_before(db: None, client: Any, warm_engine: None) -> None:
    """The contract's answer, byte for byte, and HEAD's headers without it."""
    response = client.get("/status_check")
    assert (response.status_code, response.content) == (200, b"Service is live")
    assert response["Content-Type"] == "text/plain"
    head = client.head("/status_check")
    assert (head.status_code, head.content, head["Content-Type"]) == (200, b"", "text/plain")


@pytest.fixture
def forgetting() -> Iterator[None]:
    """No success remembered before the test, none of its verdicts after it."""
    runtime.forget()
    yield
    runtime.forget()


@pytest.mark.usefixtures("warm_engine", "forgetting")
def test_a_locked_database_is_busy_not_full(
    transactional_db: None, make_tenant: Callable[..., tuple[Tenant, str]], client: Client
) -> None:
    """Another process's write lock held past the busy timeout (DATABASE_TIMEOUT_S): the probe's
    insert gets "database is locked", which /status_check called a full disk ("Cannot record
    checks (database or disk full, or read-only)")."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock")
    make_tenant()
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held
    try:
        locked = client.get("/status_check")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (locked.status_code, locked.content.decode()) == (503, runtime.DB_BUSY)
    assert locked["Retry-After"] == "1"
    assert client.get("/status_check").content == b"Service is live"


def _migrations_asked(queries: CaptureQueriesContext) -> int:
    return sum("django_migrations" in query["sql"] for query in queries.captured_queries)


def test_unready_until_every_migration_of_this_code_is_applied(
    one_migration_unapplied: tuple[str, str],
    warm_engine: None,
    client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A partly migrated database answers the tenants' read and a check row's insert (the
    columns a later migration adds are not in them): the worker said 200 and then failed the
    requests that reach the new columns with 500s and 503s. It now says which it lacks, once
    in its log, and is ready once they are applied."""
    with caplog.at_level(logging.DEBUG, logger="liveness.runtime"):
        first, second = client.get("/status_check"), client.get("/status_check")
    for answer in (first, second):
        assert answer.status_code == 503
        assert answer.content == b"Database not migrated: 1 migration(s) not applied"
        assert answer["Retry-After"] == "1"
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "migration" in r.message]
    assert [level for level, _ in said] == ["WARNING", "DEBUG"]
    assert said[0][1].endswith("1 migration(s) of this release not applied; run migrate")
    MigrationRecorder(connection).record_applied(*one_migration_unapplied)
    caplog.clear()
    ready = client.get("/status_check")
    assert (ready.status_code, ready.content) == (200, b"Service is live")
    assert [r.levelname for r in caplog.records if "migration" in r.message] == ["INFO"]


def test_the_migrations_are_asked_until_applied_then_never_again(
    one_migration_unapplied: tuple[str, str],
    warm_engine: None,
    client: Any,
    post_liveness: Post,
    tenant: tuple[Tenant, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asked until they hold, then not again in this worker; never for a /liveness request,
    neither by its view nor by the gunicorn worker's readiness refresh before it: a check pays
    nothing for them."""
    before = runtime.last_verdict()
    assert runtime.verdict_due()
    refresh_readiness()  # as the gunicorn worker does before each request
    assert runtime.last_verdict() is before  # no probe made, so no migration asked
    with CaptureQueriesContext(connection) as queries:
        post_liveness({"hash_id": tenant[1], "selfie_image": data_uri(LIVE_JPG)})
    assert _migrations_asked(queries) == 0
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/status_check").status_code == 503
    assert _migrations_asked(queries) > 0
    MigrationRecorder(connection).record_applied(*one_migration_unapplied)
    assert client.get("/status_check").status_code == 200
    MigrationRecorder(connection).record_unapplied(*one_migration_unapplied)
    monkeypatch.setattr(runtime, "_ok_until", 0.0)  # the 2 s remembered success is over
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/status_check").content == b"Service is live"
    assert _migrations_asked(queries) == 0
