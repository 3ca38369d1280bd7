"""The worker's per-route body limits (facia_site.worker.ROUTE_LIMITS) name the routes the
URLconf serves, in whatever form a client writes their path."""

import uuid

import pytest
from django.test import override_settings
from django.urls import reverse

from facia_site.worker import route_limit

SESSION = uuid.uuid4()


@pytest.mark.parametrize("name", ["session-quality", "session-challenge"])
@override_settings(SESSION_QUALITY_MAX_BYTES=12345)
def test_the_quality_bounded_calls_get_the_quality_limit(name: str) -> None:
    path = reverse(name, args=[SESSION])
    assert route_limit(path) == 12345
    encoded = path.replace(str(SESSION), str(SESSION).upper().replace("-", "%2D"))
    assert route_limit(encoded) == 12345  # as Django routes it: decoded, in either case
    assert route_limit(f"/prefix{path}") == 12345  # behind a SCRIPT_NAME


@pytest.mark.parametrize("name", ["session-selfie", "sessions", "liveness"])
@override_settings(SESSION_QUALITY_MAX_BYTES=12345, LIVENESS_MAX_BODY_BYTES=999_999)
def test_every_other_call_gets_the_body_limit(name: str) -> None:
    args = [SESSION] if name.startswith("session-") else []
    assert route_limit(reverse(name, args=args)) == 999_999
