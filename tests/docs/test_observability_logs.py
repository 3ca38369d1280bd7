"""docs/operator/observability.md names the keys of a JSON log line; they are the keys the
service's JSON formatter writes for the request line of a real request (Django's test client)
and, without the request's own four, for any other record."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.test import Client

from telemetry.logs import JsonFormatter, RequestIdFilter
from tests.conftest import REPO

PAGE = REPO / "docs" / "operator" / "observability.md"
PER_REQUEST = {"method", "path", "status", "duration_ms"}


def documented() -> set[str]:
    text = PAGE.read_text(encoding="utf-8")
    paragraph = text.split("One JSON object per line", 1)[1].split("Any other attribute", 1)[0]
    return set(re.findall(r"`(\w+)`", paragraph)) - {"null"}


def as_json(record: logging.LogRecord) -> dict[str, object]:
    RequestIdFilter().filter(record)
    found: dict[str, object] = json.loads(JsonFormatter().format(record))
    return found


@pytest.mark.django_db
def test_a_json_line_has_the_documented_keys(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="facia.request"):
        assert client.get("/status_check").status_code in (200, 503)
    (line,) = [r for r in caplog.records if r.name == "facia.request"]
    assert len(documented()) >= 10
    assert set(as_json(line)) == documented()
    other = logging.LogRecord("facia.other", logging.INFO, __file__, 1, "text", None, None)
    assert set(as_json(other)) == documented() - PER_REQUEST
