"""GET /metrics: its methods and its refusal as a real client meets them (the scrape itself:
tests/system)."""

import ipaddress
from typing import Any

import pytest
from django.test import Client

from liveness.answers import ANSWERS
from telemetry.views import FORBIDDEN


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_unsafe_methods_get_our_json_405_not_a_csrf_page(method: str) -> None:
    """Django's test client skips the CSRF check by default; with it on, as gunicorn serves,
    a POST got CSRF's 403 HTML page instead of 405 and ``Allow``. The 405 itself was Django's
    empty text/html one, where every other endpoint answers our JSON sentence."""
    response = getattr(Client(enforce_csrf_checks=True), method)("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response["Content-Type"] == "application/json"
    sentence = ANSWERS["method_not_allowed"].text.format(method=method.upper())
    assert response.json() == {"error": sentence}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{"REMOTE_ADDR": "127.0.0.2"}, {"REMOTE_ADDR": "127.0.0.1", "HTTP_AUTHORIZATION": "Bearer x"}],
    ids=["outside the networks", "a wrong token"],
)
def test_a_refused_scrape_is_a_json_403(headers: dict[str, Any]) -> None:
    """Every error on an API path is JSON ``{"error": ...}``: the 403 too, not text/plain."""
    response = Client().get("/metrics", **headers)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": FORBIDDEN}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("client_address", "allowed"),
    [
        ("::ffff:127.0.0.1", None),
        ("::ffff:10.1.2.3", "10.0.0.0/8"),
        ("::ffff:10.1.2.3", "::ffff:10.0.0.0/104"),
    ],
    ids=["loopback", "an allowed network", "an allowed network written mapped"],
)
def test_an_ipv4_scraper_on_a_dual_stack_socket_is_let_in(
    settings: Any, client_address: str, allowed: str | None
) -> None:
    """HOST=:: binds one socket for IPv4 and IPv6: an IPv4 client's REMOTE_ADDR is its mapped
    IPv6 form, which no IPv4 network of METRICS_ALLOWED_NETWORKS contains; each such scraper,
    a local one under the default networks included, got 403. A network written in the mapped
    form itself (``::ffff:10.0.0.0/104``) lets the same client in."""
    if allowed is not None:
        settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(allowed)]
    response = Client().get("/metrics", REMOTE_ADDR=client_address)
    assert response.status_code == 200
    unmapped = client_address.removeprefix("::ffff:")
    outside = unmapped.rsplit(".", 1)[0] + ".0" if allowed is None else "192.0.2.1"
    assert Client().get("/metrics", REMOTE_ADDR=f"::ffff:{outside}").status_code == 403
