"""CORS of the token calls (quality, selfie, challenge): CAPTURE_ALLOWED_ORIGINS and the
preflight (Django's test client)."""

from typing import Any

import pytest
from django.test.client import Client

from facia_site import env

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_token_calls_answer_listed_origins_only(db: None, client: Client, settings: Any) -> None:
    settings.CAPTURE_ALLOWED_ORIGINS = ["https://app.example"]
    url = "/sessions/00000000-0000-4000-8000-000000000000/quality"
    preflight = client.options(
        url, HTTP_ORIGIN="https://app.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example"
    assert preflight["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    refused = client.post(
        url, data="{}", content_type="application/json", HTTP_ORIGIN="https://app.example"
    )
    assert (
        refused.status_code == 404
        and refused["Access-Control-Allow-Origin"] == "https://app.example"
        and refused["Access-Control-Expose-Headers"] == "Retry-After, X-Request-ID"
    )
    other = client.options(url, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
    hash_id_call = client.options("/sessions", HTTP_ORIGIN="https://app.example")
    assert "Access-Control-Allow-Origin" not in hash_id_call


def test_origins_spelt_otherwise_than_browsers_send_them_still_match(
    db: None, client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CAPTURE_ALLOWED_ORIGINS is compared as a string with the Origin a browser sends, which
    is lower case, without the default port, and punycode: an operator's
    ``https://App.Example:443`` started the service and matched no page, every cross-origin
    call of the component failing in the browser."""
    configured = "https://App.Example:443, HTTP://Localhost:8080, https://Bücher.example"
    monkeypatch.setenv("CAPTURE_ALLOWED_ORIGINS", configured)
    settings.CAPTURE_ALLOWED_ORIGINS = env.env_origins("CAPTURE_ALLOWED_ORIGINS")
    url = "/sessions/00000000-0000-4000-8000-000000000000/quality"
    for origin in ("https://app.example", "http://localhost:8080", "https://xn--bcher-kva.example"):
        preflight = client.options(
            url, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
        assert preflight.get("Access-Control-Allow-Origin") == origin, origin
        assert preflight["Access-Control-Allow-Methods"] == "POST"


@pytest.mark.parametrize("call", ["quality", "selfie", "challenge"])
@pytest.mark.parametrize("origin", ["https://app.example", "https://other.example"])
def test_a_preflight_204_has_no_body_and_no_content_type(
    db: None, client: Client, settings: Any, call: str, origin: str
) -> None:
    """A 204 has no body (RFC 9110 15.3.5), so nothing to type: the preflight said
    ``Content-Type: text/html; charset=utf-8``, Django's default for a plain HttpResponse."""
    settings.CAPTURE_ALLOWED_ORIGINS = ["https://app.example"]
    url = f"/sessions/00000000-0000-4000-8000-000000000000/{call}"
    preflight = client.options(url, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert (preflight.status_code, preflight.content) == (204, b"")
    assert "Content-Type" not in preflight, dict(preflight.headers)
