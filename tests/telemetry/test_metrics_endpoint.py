"""GET /metrics: its methods and its refusal as a real client meets them (the scrape itself:
tests/system)."""

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
