"""What a client chooses cannot grow the service's state without bound: the HTTP method is a
metrics label only when it is a known one, and the database counts refusals and throttle hits
under a bounded number of client buckets and subjects."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from django.test import Client, override_settings

from guard import refusals, throttle
from guard.models import Counter, Refusal
from guard.throttle import AUTH_SCOPE
from telemetry import metrics

pytestmark = pytest.mark.django_db
LABEL = re.compile(r'^facia_http_requests_total\{.*method="([^"]*)"', re.MULTILINE)


def random_method() -> str:
    return "X" + secrets.token_hex(6).upper()


def test_unknown_methods_share_one_label(client: Client) -> None:
    for _ in range(5):  # every label set the requests below make exists before the measure
        client.generic(random_method(), "/liveness")
        client.generic(random_method(), "/nowhere")
    client.get("/metrics")
    before = client.get("/metrics").content.decode()
    for _ in range(200):
        assert client.generic(random_method(), "/liveness").status_code == 405
        assert client.generic(random_method(), "/nowhere").status_code == 404
    after = client.get("/metrics").content.decode()
    assert set(LABEL.findall(after)) <= metrics.METHODS | {"other"}
    assert 'endpoint="liveness",method="other",status="405"' in after
    # The counts grew, not the lines (these 400 requests added 400 lines, 50 KB, before).
    assert len(LABEL.findall(after)) == len(LABEL.findall(before))
    assert len(after) - len(before) < 2000


def refused(client: Client, address: str) -> int:
    body = {"hash_id": "guess"}
    response = client.post("/liveness", body, content_type="application/json", REMOTE_ADDR=address)
    return response.status_code


def rows() -> dict[str, int]:
    return dict(Refusal.objects.filter(tenant_id=0).values_list("client", "hits"))


@override_settings(AUTH_FAILURE_LIMIT=0)
def test_refusal_counts_keep_a_bounded_number_of_buckets_a_day(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusals, "MAX_BUCKETS_PER_DAY", 3)
    for n in range(10):
        assert refused(client, f"198.51.{n}.1") == 401
    assert refused(client, "198.51.0.2") == 401  # a bucket counted today keeps its row
    assert rows() == {
        "198.51.0.0/24": 2,
        "198.51.1.0/24": 1,
        "198.51.2.0/24": 1,
        "other": 7,
    }


@override_settings(AUTH_FAILURE_LIMIT=2, AUTH_FAILURE_WINDOW_S=3600)
def test_a_known_bucket_keeps_its_name_for_another_code(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusals, "MAX_BUCKETS_PER_DAY", 1)
    assert [refused(client, "198.51.100.1") for _ in range(3)] == [401, 401, 429]
    assert refused(client, "203.0.113.1") == 401
    counted = Refusal.objects.filter(tenant_id=0).values_list("code", "client", "hits")
    assert sorted(counted) == [
        ("auth_throttled", "198.51.100.0/24", 1),
        ("invalid_credentials", "198.51.100.0/24", 2),
        ("invalid_credentials", "other", 1),
    ]


@override_settings(AUTH_FAILURE_LIMIT=2, AUTH_FAILURE_WINDOW_S=3600)
def test_failed_auth_counters_keep_a_bounded_number_of_subjects_a_window(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "MAX_SUBJECTS", 3)
    sources = [f"2001:db8:{n + 1:x}::1" for n in range(20)]
    assert [refused(client, source) for source in sources] == [401] * 20
    subjects = dict(Counter.objects.filter(scope=AUTH_SCOPE).values_list("subject", "hits"))
    named = [throttle.client_network(source) for source in sources[:3]]  # each its /64
    assert subjects == {named[0]: 1, named[1]: 1, named[2]: 1, throttle.OVERFLOW: 17}
    # The subjects counted by name are throttled as before...
    assert [refused(client, sources[0]) for _ in range(2)] == [401, 429]
    # ...and the others are not locked out together (a new client would be too).
    assert refused(client, sources[5]) == 401
    assert Counter.objects.filter(scope=AUTH_SCOPE).count() == 4


def test_a_bounded_scope_deletes_its_expired_windows() -> None:
    """At most two windows (the login throttle reads the previous one), without a cron."""
    for start in (0, 60, 120, 180):
        window = throttle.Window(start, 60)
        for subject in ("a", "b"):
            throttle.hit("login-ip", subject, window, bounded=True)
        throttle.hit("tenant-rate", "1", window)  # not bounded: left to prune_counters
    left = Counter.objects.values_list("scope", "bucket").distinct()
    assert sorted(left) == [("login-ip", 120), ("login-ip", 180)] + [
        ("tenant-rate", start) for start in (0, 60, 120, 180)
    ]


def test_other_scopes_are_not_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenant's rate (its id) is not the client's choice: never pooled."""
    monkeypatch.setattr(throttle, "MAX_SUBJECTS", 1)
    window = throttle.Window.current(60)
    for tenant_id in range(3):
        assert throttle.hit("tenant-rate", str(tenant_id), window) == 1
    assert throttle.hit("tenant-rate", "2", window) == 2


def test_bounded_hits_count_as_before(monkeypatch: Any) -> None:
    window = throttle.Window.current(60)
    assert [throttle.hit("login-ip", "a", window, bounded=True) for _ in range(3)] == [1, 2, 3]
    assert throttle.hits("login-ip", "a", window) == 3
