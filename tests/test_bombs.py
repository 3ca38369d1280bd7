"""Decode bombs and other cheap-to-send, costly-to-answer requests: refused in bounded work."""

from __future__ import annotations

import tracemalloc
from typing import Any

from liveness.images import strip_data_uri

SEMICOLON_FIELD = "data:" + ";" * (16 * 1024 * 1024)


def test_data_uri_of_16mb_semicolons_parses_in_bounded_memory() -> None:
    tracemalloc.start()
    try:
        assert strip_data_uri(SEMICOLON_FIELD) is SEMICOLON_FIELD  # no prefix: left as it is
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # the old regex peaked at 2.75 GB here


def test_options_is_not_allowed(db: None, client: Any) -> None:
    response = client.options("/liveness")
    assert response.status_code == 405
    assert response.json() == {"error": 'Method "OPTIONS" not allowed.'}
    assert response["Allow"] == "POST"
