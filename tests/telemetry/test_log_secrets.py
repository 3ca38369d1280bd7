"""Debug logging writes no secret of a page: the new hash_id on the page that shows it once,
the session token on the capture demo's page (Django's test client, the real admin, the
service's own logging configuration at DEBUG, in both formats), nor a database's password; a
503 answering a database outage is its access line alone."""

import io
import logging.config
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from django.test import Client

from accounts.models import HashId, Tenant
from facia_site.startup import cause
from telemetry.logs import DropOutageAnswers, database_error, logging_config, outage_answer

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["json", "text"])
def debug_logs(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """What the service's logging writes at DEBUG (LOG_LEVEL=debug), in each format."""
    config = logging_config(request.param, "DEBUG")
    written = io.StringIO()
    config["handlers"]["stdout"]["stream"] = written
    logging.config.dictConfig(config)
    try:
        yield written
    finally:
        logging.config.dictConfig(settings.LOGGING)


def test_the_page_of_a_new_hash_id_logs_no_secret(
    admin_client: Client, debug_logs: io.StringIO
) -> None:
    """django.template logs each variable a template misses at DEBUG, with a traceback whose
    exception holds the whole context: the secret on the page went to the log with it."""
    tenant = Tenant.objects.create(name="acme")
    page = admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/issue/").content.decode()
    secret = re.search(r'class="new-hash-id">([^<]+)</code>', page)
    assert secret is not None and HashId.tenant_for(secret.group(1)) == tenant
    logged = debug_logs.getvalue()
    assert "POST /admin/accounts/tenant/" in logged  # the logs were written, at DEBUG
    assert secret.group(1) not in logged


def test_the_capture_demo_logs_no_token(
    admin_client: Client, debug_logs: io.StringIO, settings: Any
) -> None:
    settings.CAPTURE_DEMO = True
    tenant = Tenant.objects.create(name="acme")
    HashId.issue(tenant)
    page = admin_client.post("/capture/demo", {"tenant": tenant.pk, "lang": "en"})
    token = page.context["opened"].token
    assert token in page.content.decode()
    logged = debug_logs.getvalue()
    assert "POST /capture/demo" in logged
    assert token not in logged


def test_a_database_error_is_logged_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """psycopg quotes a connection string it cannot parse, password included; the outage
    records (liveness.runtime, the task worker) say database_error's text instead."""
    with pytest.raises(psycopg.Error) as raised:
        psycopg.connect("postgres://facia:s3cretpw@[db/facia")
    assert "s3cretpw" in str(raised.value)  # what psycopg says
    said = database_error(raised.value)
    assert "s3cretpw" not in said
    assert "postgres://facia:***@[db/facia" in said
    paired = database_error(Exception("host=db password='se cret' port=5432"))
    assert paired == "host=db password=*** port=5432"
    monkeypatch.setitem(settings.DATABASES["default"], "PASSWORD", "hunter2 pw")
    assert database_error(Exception("rejected hunter2 pw\n for facia")) == "rejected *** for facia"


@pytest.mark.parametrize("marked", [True, False])
def test_only_a_503_answering_an_outage_loses_djangos_error(marked: bool) -> None:
    request = HttpRequest()
    if marked:
        outage_answer(request)
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", None, None)
    record.status_code, record.request = 503, request
    assert DropOutageAnswers().filter(record) is not marked


def test_start_up_says_a_database_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The start-up check's one line (facia_site.startup.cause) redacts as the runtime's
    records do: it quoted the error as is."""
    monkeypatch.setitem(settings.DATABASES["default"], "PASSWORD", "hunter2")
    said = cause(DatabaseError('password authentication failed: "postgres://u:hunter2@db/x"'))
    assert "hunter2" not in said
    assert said.startswith("database ") and "DatabaseError: password authentication" in said
