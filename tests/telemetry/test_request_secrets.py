"""A hash_id a client puts where it does not belong (the URL's path, its query string, the Host
header) reaches no log record: the service's own logging configuration at DEBUG, in both
formats, its output searched for the secret and every 16-character piece of it, in either
case (Django's test client, a real issued hash_id). The records still say what an operator
needs: the method, the path with the secret replaced by its length, the status, the id."""

import io
import json
import logging.config
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils.log import log_response
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from accounts.models import HashId, Tenant
from facia_site.worker import request_target
from telemetry.logs import CONTINUATION, logging_config

pytestmark = pytest.mark.django_db
# The shortest piece of a secret searched for.
PIECE = 16
Logs = Callable[[], list[dict[str, Any]]]


def pieces(secret: str) -> set[str]:
    return {secret[at : at + PIECE].lower() for at in range(len(secret) - PIECE + 1)}


def assert_not_logged(secret: str, written: str) -> None:
    found = [piece for piece in pieces(secret) if piece in written.lower()]
    assert not found, (found, written)


def parsed(line: str, log_format: str) -> dict[str, Any]:
    """A record as JSON, or a text line's level, logger, request id and message."""
    if log_format == "json":
        return dict(json.loads(line))
    _date, _time, level, _pid, name, rest = line.split(" ", 5)
    request_id, message = rest.removeprefix("[").split("] ", 1)
    return {"levelname": level, "name": name, "request_id": request_id, "message": message}


@pytest.fixture(params=["json", "text"])
def logs(request: pytest.FixtureRequest, hash_id: str) -> Iterator[Logs]:
    """Each call: the records written so far, once the whole output is searched for
    ``hash_id``."""
    config = logging_config(request.param, "DEBUG")
    written = io.StringIO()
    for handler in ("stdout", "security"):
        config["handlers"][handler]["stream"] = written
    logging.config.dictConfig(config)

    def read() -> list[dict[str, Any]]:
        output = written.getvalue()
        assert_not_logged(hash_id, output)
        lines = [line for line in output.splitlines() if not line.startswith(CONTINUATION)]
        return [parsed(line, request.param) for line in lines]

    try:
        yield read
    finally:
        logging.config.dictConfig(settings.LOGGING)


@pytest.fixture
def hash_id(make_tenant: Callable[..., tuple[Tenant, str]]) -> str:
    return make_tenant()[1]


def named(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [record for record in records if record["name"] == name]


def access_lines(records: list[dict[str, Any]]) -> list[str]:
    """The message of each access line (method, path, status), each checked for its request
    id and, as JSON, for its fields."""
    lines = named(records, "facia.request")
    for line in lines:
        assert line["request_id"] and line["request_id"] != "None", line
        if "path" in line:
            assert line["message"] == f"{line['method']} {line['path']} {line['status']}"
            assert line["duration_ms"] >= 0
    return [line["message"] for line in lines]


def test_a_hash_id_in_the_path_is_logged_as_its_length(
    logs: Logs, hash_id: str, admin_client: Client
) -> None:
    session = uuid.uuid4()
    assert Client().get(f"/liveness/{hash_id}").status_code == 404
    assert Client().post(f"/{hash_id}", {}).status_code == 404
    assert (
        admin_client.get(f"/{settings.ADMIN_URL}accounts/tenant/{hash_id}/change/").status_code
        == 302
    )
    assert Client().get(f"/sessions/{session}").status_code == 401
    assert access_lines(logs()) == [
        "GET /liveness/<redacted:43> 404",
        "POST /<redacted:43> 404",
        f"GET /{settings.ADMIN_URL}accounts/tenant/<redacted:43>/change/ 302",
        f"GET /sessions/{session} 401",  # an id that is no secret stays whole
    ]


def test_a_hash_id_in_the_query_string_is_not_logged(
    logs: Logs, hash_id: str, admin_client: Client
) -> None:
    """The access line has no query string; a query key or value the admin refuses is quoted
    by Django's record for it."""
    assert Client().get(f"/liveness?hash_id={hash_id}").status_code == 405
    changelist = f"/{settings.ADMIN_URL}accounts/tenant/"
    assert admin_client.get(f"{changelist}?hash_ids__tenant__{hash_id}=1").status_code == 400
    assert admin_client.get(f"{changelist}?_to_field={hash_id}").status_code == 400
    records = logs()
    assert access_lines(records) == [
        "GET /liveness 405",
        f"GET {changelist} 400",
        f"GET {changelist} 400",
    ]
    lookup, to_field = (r["message"] for r in records if r["name"].startswith("django.security"))
    assert lookup == "Filtering by <redacted:61> not allowed"
    assert to_field == "The field <redacted:43> cannot be referenced."


@pytest.mark.parametrize("port", ["", ":8443"])
def test_a_hash_id_as_the_host_is_not_logged(
    logs: Logs, hash_id: str, make_tenant: Callable[..., tuple[Tenant, str]], port: str
) -> None:
    """The refusal of a Host outside ALLOWED_HOSTS stays an ERROR naming the host, with the
    secret replaced by its length. Django's record quotes a Host it finds valid (no ``_``)
    twice: as sent, and lower-cased."""
    tenant, _ = make_tenant("dns")
    issued = (HashId.issue(tenant).secret for _ in range(100))
    valid = next(secret for secret in issued if "_" not in secret)
    for host in (hash_id, f"{valid}.example", "liveness-eu-01.example"):
        assert Client(HTTP_HOST=host + port).get("/liveness").status_code == 400
    records = logs()
    assert access_lines(records) == ["GET /liveness 400"] * 3
    refused = [r["message"] for r in named(records, "django.security.DisallowedHost")]
    assert_not_logged(valid, json.dumps(records))
    assert refused[0].startswith(f"Invalid HTTP_HOST header: '<redacted:43>{port}'. ")
    assert refused[1] == (
        f"Invalid HTTP_HOST header: '<redacted:43>.example{port}'. "
        "You may need to add '<redacted:43>.example' to ALLOWED_HOSTS."
    )
    assert refused[2].endswith("add 'liveness-eu-01.example' to ALLOWED_HOSTS.")  # kept whole


def test_an_error_line_names_the_path_without_a_hash_id(logs: Logs, hash_id: str) -> None:
    """Django's own line for a 5xx (django.request) and the gunicorn worker's for a request
    it failed to serve name the path."""
    request = RequestFactory().get(f"/{settings.ADMIN_URL}{hash_id}")
    response = HttpResponse(status=500)
    log_response(
        "%s: %s", "Internal Server Error", request.path, response=response, request=request
    )
    head = f"GET /liveness/{hash_id}?hash_id={hash_id} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    encoded = f"GET /x/{''.join(f'%{ord(c):02X}' for c in hash_id)} HTTP/1.1\r\nHost: a\r\n\r\n"
    targets = [
        request_target(next(RequestParser(Config(), [raw], None)))
        for raw in (head, encoded.encode())
    ]
    assert targets == ["GET /liveness/<redacted:43>", "GET /x/<redacted:43>"]
    (record,) = named(logs(), "django.request")
    assert record["message"] == f"Internal Server Error: /{settings.ADMIN_URL}<redacted:43>"


def test_a_hash_id_sent_as_the_request_id_is_replaced(logs: Logs, hash_id: str) -> None:
    """The request id is written in every record of its request and answered back: a hash_id
    sent as ``X-Request-ID`` gets a fresh id instead. A proxy's single-case hex id and a
    UUID are still the caller's own."""
    hex_id, dashed = uuid.uuid4().hex, str(uuid.uuid4())
    answered = [
        Client().get("/liveness", HTTP_X_REQUEST_ID=sent)["X-Request-ID"]
        for sent in (hash_id, f"trace.{hash_id}", hex_id, dashed)
    ]
    assert answered[2:] == [hex_id, dashed]
    assert all(re.fullmatch(r"[0-9a-f]{32}", fresh) for fresh in answered[:2]), answered
    records = named(logs(), "facia.request")
    assert [record["request_id"] for record in records] == answered
