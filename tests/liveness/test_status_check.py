"""GET /status_check: 503 until this process's engine is warmed, then 200 ``Service is live``."""

from typing import Any

import pytest
from django.test import Client

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
