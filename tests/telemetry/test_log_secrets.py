"""Debug logging writes no secret of a page: the new hash_id on the page that shows it once,
the session token on the capture demo's page (Django's test client, the real admin, the
service's own logging configuration at DEBUG, in both formats)."""

import io
import logging.config
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import HashId, Tenant
from telemetry.logs import logging_config

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
