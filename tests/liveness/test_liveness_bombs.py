"""Decode bombs and other cheap-to-send, costly-to-answer requests: refused in bounded work
(under gunicorn, never at another client's expense: tests/system/test_liveness_bombs.py)."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from bench.corpus import CASES, Request
from liveness.checks import strip_data_uri

SEMICOLON_FIELD = "data:" + ";" * (16 * 1024 * 1024)
LIMIT_REACHED = {"message": "Your request limit has been reached."}
BOMBS = sorted(name for name in CASES if name.startswith("bomb-"))


def test_data_uri_of_16mb_semicolons_parses_in_bounded_memory() -> None:
    tracemalloc.start()
    try:
        assert strip_data_uri(SEMICOLON_FIELD) is SEMICOLON_FIELD  # no prefix: left as it is
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # a backtracking regex peaks at 2.75 GB here


def test_options_is_not_allowed(db: None, client: Any) -> None:
    response = client.options("/liveness")
    assert response.status_code == 405
    assert response.json() == {"error": 'Method "OPTIONS" not allowed.'}
    assert response["Allow"] == "POST"


@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize("name", BOMBS)
def test_tenant_at_its_limit_never_reaches_the_decoder(
    name: str, make_tenant: Any, client: Any
) -> None:
    # Decoded, each of these is a 400; a 429 means the image was never looked at.
    _, secret = make_tenant(f"full-{name}", request_limit=3, requests_used=3)
    request: Request = CASES[name](secret)
    response = client.post("/liveness", data=request.body, content_type=request.content_type)
    assert (response.status_code, response.json()) == (429, LIMIT_REACHED)
