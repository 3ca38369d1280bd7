"""GET /metrics: its methods as a real client meets them (the scrape itself: tests/system)."""

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unsafe_methods_get_405_not_a_csrf_page(method: str) -> None:
    """Django's test client skips the CSRF check by default; with it on, as gunicorn serves,
    a POST got CSRF's 403 HTML page instead of 405 and ``Allow``."""
    response = getattr(Client(enforce_csrf_checks=True), method)("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
