"""A request Django refuses as suspicious (django.security.*: too many fields, an admin lookup
a URL may not make, a Host outside ALLOWED_HOSTS) is its 400's access line and one short record
without a traceback, whatever the client sent (Django's test client, the service's own logging
configuration, its stdout read back)."""

import json
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from telemetry.logs import SECURITY_MESSAGE_CHARS, logging_config

MANY_FIELDS = "&".join(["a"] * 1200)  # over DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000)
LONG_HOST = "h" * 5000
# The longest a record may be as a JSON line: its message bounded, the rest fixed fields.
MAX_LINE_BYTES = SECURITY_MESSAGE_CHARS + 300


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Each call: the service's logging as JSON on the captured stdout from then on, and the
    lines written since the last call."""

    def read() -> list[dict[str, Any]]:
        logging.config.dictConfig(logging_config("json", "INFO"))
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    yield read
    logging.config.dictConfig(settings.LOGGING)


def security_records(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["name"].startswith("django.security")]


def assert_one_short_record(lines: list[dict[str, Any]], name: str, level: str) -> None:
    """Besides the access line, one record of ``name`` at ``level``, with no traceback and
    short whatever the request held."""
    (record,) = security_records(lines)
    assert (record["name"], record["levelname"]) == (name, level), record
    assert "exc_info" not in record, record
    assert len(json.dumps(record)) <= MAX_LINE_BYTES, len(json.dumps(record))
    others = [line for line in lines if line is not record]
    assert [line["name"] for line in others] == ["facia.request"], others
    assert others[0]["status"] == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/schema/"), ("get", f"/{settings.ADMIN_URL}login/"), ("post", "/liveness")],
)
def test_too_many_fields_is_one_warning_without_a_traceback(
    json_lines: Any, client: Client, method: str, path: str
) -> None:
    json_lines()
    if method == "get":
        answer = client.get(f"{path}?{MANY_FIELDS}")
    else:  # a form body: Django counts its fields when a view reads request.POST
        answer = client.post(
            f"/{settings.ADMIN_URL}login/",
            MANY_FIELDS,
            content_type="application/x-www-form-urlencoded",
        )
    assert answer.status_code == 400
    assert_one_short_record(json_lines(), "django.security.TooManyFieldsSent", "WARNING")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("_to_field=tenant", "DisallowedModelAdminToField"),
        (f"created_at__gte={'x' * 5000}", "DisallowedModelAdminLookup"),
        (f"hash_ids__tenant__{'y' * 5000}=x", "DisallowedModelAdminLookup"),  # quoted
    ],
)
def test_a_lookup_the_admin_refuses_is_one_short_warning(
    json_lines: Any, admin_client: Client, query: str, name: str
) -> None:
    json_lines()
    answer = admin_client.get(f"/{settings.ADMIN_URL}accounts/tenant/?{query}")
    assert answer.status_code == 400
    assert_one_short_record(json_lines(), f"django.security.{name}", "WARNING")


@pytest.mark.django_db
def test_a_long_host_is_one_bounded_error(json_lines: Any) -> None:
    """A Host outside ALLOWED_HOSTS stays an ERROR (a misconfigured ALLOWED_HOSTS must show),
    naming the host, bounded: a 5,000-character Host made a 10,265-byte line."""
    json_lines()
    answer = Client(HTTP_HOST=LONG_HOST).post("/liveness")
    assert answer.status_code == 400
    lines = json_lines()
    assert_one_short_record(lines, "django.security.DisallowedHost", "ERROR")
    assert "hhhhhhhh" in security_records(lines)[0]["message"]
