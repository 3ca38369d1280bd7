"""Content-Security-Policy (Django's test client): every HTML page the service serves carries
the strict policy (the console, the one-time hash_id page, the capture demo with its session
token, login, error pages) and holds nothing that policy would refuse (inline scripts, event
handler attributes, javascript: URLs, inline styles); the API docs carry their own; JSON answers
carry none (the API's headers are its contract: tests/liveness/test_schema.py). The browser
side, that no page meets a violation in chromium: tests/browser.py's watch."""

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from accounts.models import HashId, Tenant
from capture.models import CaptureSession
from tests.conftest import REPO
from tests.console.test_console_pages import console, pages
from tests.guard.test_admin_permissions import staff

pytestmark = pytest.mark.django_db
__all__ = ["console"]  # the fixture, used by name below

HEADER = "Content-Security-Policy"
# The policy of every HTML page, as a browser reads it (directive -> sources).
STRICT = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy(response: Any) -> dict[str, list[str]]:
    """The response's Content-Security-Policy, directive -> sources (KeyError: none sent)."""
    parsed: dict[str, list[str]] = {}
    for part in response[HEADER].split(";"):
        directive, *sources = part.split()
        parsed[directive] = sources
    return parsed


class _Inline(HTMLParser):
    """What a strict policy refuses in a page: inline scripts and styles, handler attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and not named.get("src"):
            self.found.append(f"inline <script> {self.getpos()}")
        if tag == "style":
            self.found.append(f"<style> {self.getpos()}")
        if tag == "meta" and (named.get("http-equiv") or "").lower() == "content-security-policy":
            self.found.append("a <meta> policy (the header is the policy)")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...> {self.getpos()}")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def inline(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    return parser.found


def assert_strict(response: Any, url: str) -> None:
    assert response["Content-Type"].startswith("text/html"), url
    assert policy(response) == STRICT, url
    assert inline(response.content.decode()) == [], url


def issued_page(client: Client, tenant: Tenant) -> Any:
    """The answer to the tenant page's issue button: the one page that shows the new secret."""
    response = client.post(reverse("admin:accounts_tenant_issue", args=[tenant.pk]))
    assert b"new-hash-id" in response.content
    return response


def test_every_console_page_carries_the_strict_policy(
    admin_client: Client, console: dict[str, Any]
) -> None:
    """The index, every model's list and change page, the tenant's own pages (usage, calibrate,
    history), the add form, and the page of a freshly issued hash_id."""
    tenant = console["tenant"]
    urls = [url for _label, url in pages(console)]
    urls.append(reverse("admin:accounts_tenant_add"))
    change = reverse("admin:accounts_tenant_change", args=[tenant.pk])
    assert b'id="issue-hash-id"' in admin_client.get(change).content
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_strict(response, url)
    assert_strict(issued_page(admin_client, tenant), "issued")


def test_login_logout_and_error_pages_carry_it(client: Client) -> None:
    assert_strict(client.get(reverse("admin:login")), "login")
    User.objects.create_superuser("root", "r@example.com", "Pw-1234567!")
    client.login(username="root", password="Pw-1234567!")
    response = client.get(f"/{settings.ADMIN_URL}no/such/page/")
    assert response.status_code == 404
    assert_strict(response, "admin 404")
    assert_strict(client.post(reverse("admin:logout")), "logout")


def test_the_csrf_failure_page_carries_it(client: Client) -> None:
    """A form posted with an expired or wrong CSRF token (403): the console's page, nothing
    inline (Django's held a <style>, refused), saying what to do, signed in or not."""
    checked = Client(enforce_csrf_checks=True)
    checked.get(reverse("admin:login"))  # the CSRF cookie, as a browser holds it
    refused = checked.post(reverse("admin:login"), {"csrfmiddlewaretoken": "x" * 64})
    assert refused.status_code == 403
    assert_strict(refused, "CSRF failure, signed out")
    page = refused.content.decode()
    assert "Sign in again" in page and "console/console.css" in page
    User.objects.create_superuser("root", "r@example.com", "Pw-1234567!")
    checked.login(username="root", password="Pw-1234567!")
    change = reverse("admin:accounts_tenant_add")
    refused = checked.post(change, {"name": "X"})  # no token at all
    assert refused.status_code == 403
    assert_strict(refused, "CSRF failure, signed in")
    assert f'href="{change}"' in refused.content.decode()
    assert not Tenant.objects.exists()


def test_the_capture_demo_and_its_verdict_carry_it(settings: Any) -> None:
    settings.CAPTURE_DEMO = True
    tenant = Tenant.objects.create(name="Demo Co")
    HashId.issue(tenant)
    operator = staff("capture.add_capturesession")
    assert_strict(operator.get("/capture/demo"), "demo form")
    opened = operator.post("/capture/demo", {"tenant": tenant.pk, "lang": "en"})
    assert b"data-token=" in opened.content  # the page that holds the session token
    assert_strict(opened, "demo with a session")
    session = CaptureSession.objects.get(tenant=tenant)
    assert_strict(operator.get(f"/capture/demo/{session.pk}"), "demo verdict")
    forbidden = staff().get("/capture/demo")  # 403: may not open a session
    assert forbidden.status_code == 403 and policy(forbidden) == STRICT


def test_the_api_docs_carry_their_own_policy(client: Client) -> None:
    """Swagger UI runs under the strict policy; Redoc's bundle needs blob: workers and styles it
    injects itself, and never an inline script; neither page holds anything inline."""
    docs = client.get("/api/docs/")
    assert_strict(docs, "/api/docs/")
    init = client.get("/api/docs/?script=")  # Swagger UI's init script, from the view
    assert init["Content-Type"].startswith("application/javascript")
    redoc = client.get("/api/redoc/")
    assert policy(redoc) == {
        **STRICT,
        "style-src": ["'self'", "'unsafe-inline'"],
        "worker-src": ["blob:"],
    }
    assert inline(redoc.content.decode()) == []


def test_json_answers_carry_none(client: Client) -> None:
    for response in (
        client.get("/status_check"),
        client.post("/liveness", {}, content_type="application/json"),
        client.get("/no/such/path"),
        client.get("/api/schema/", HTTP_ACCEPT="application/json"),
    ):
        assert HEADER not in response, response.request["PATH_INFO"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/accounts/copy.js",
        "/static/calibration/jobs.js",
        "/static/capture/demo.css",
        "/static/liveness/redoc-page.css",
        "/static/liveness/swagger-ui-page.css",
    ],
)
def test_what_left_the_pages_is_served(client: Client, path: str) -> None:
    """The scripts and styles moved out of the pages, served as the image serves them
    (WhiteNoise from the apps' static folders, no collectstatic)."""
    response = client.get(path)
    assert response.status_code == 200, path
    assert HEADER not in response


def test_security_md_quotes_the_policy_sent(client: Client) -> None:
    """docs/operator/security.md prints the header as the login page answers it."""
    page = (REPO / "docs" / "operator" / "security.md").read_text(encoding="utf-8")
    quoted = re.search(r"^`Content-Security-Policy: ([^`]+)`$", page, re.M)
    assert quoted is not None
    assert client.get(reverse("admin:login"))[HEADER] == quoted[1]
