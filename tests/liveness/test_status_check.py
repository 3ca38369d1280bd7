"""GET /status_check: 503 until this process's engine is warmed, then 200 ``Service is live``."""

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Tenant
from liveness import runtime


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
