"""401 and 429 answers are counted: per tenant where the hash_id names one, else per client
address bucket; the usage page, its CSV and /metrics show them."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import HashId, Tenant
from guard.models import Refusal
from guard.refusals import client_bucket
from telemetry import metrics
from tests.conftest import LIVE_JPG, data_uri, rate_spent

pytestmark = pytest.mark.django_db


def post(client: Client, body: dict[str, str], ip: str = "203.0.113.57") -> int:
    response = client.post("/liveness", body, content_type="application/json", REMOTE_ADDR=ip)
    return response.status_code


def counts() -> list[tuple[int, str, int, str, int]]:
    rows = Refusal.objects.order_by("status", "code", "tenant_id", "client")
    return [(r.status, r.code, r.tenant_id, r.client, r.hits) for r in rows]


def test_client_bucket_is_the_network_not_the_address() -> None:
    assert client_bucket("203.0.113.57") == "203.0.113.0/24"
    assert client_bucket("::ffff:203.0.113.57") == "203.0.113.0/24"
    assert client_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_bucket("not an address") == "unknown"


def test_unknown_hash_id_is_counted_per_address_bucket(client: Client) -> None:
    assert post(client, {"hash_id": "nope"}) == 401
    assert post(client, {"hash_id": "nope again"}, ip="203.0.113.9") == 401
    assert counts() == [(401, "invalid_credentials", 0, "203.0.113.0/24", 2)]


def test_revoked_hash_id_and_quota_are_counted_for_the_tenant(client: Client) -> None:
    tenant = Tenant.objects.create(name="Counted", request_limit=0)
    issued = HashId.issue(tenant)
    body = {"hash_id": issued.secret, "selfie_image": data_uri(LIVE_JPG)}
    assert post(client, body) == 429  # limit 0: refused before the image is read
    issued.record.revoke()
    assert post(client, body) == 401
    assert counts() == [
        (401, "invalid_credentials", tenant.pk, "", 1),
        (429, "limit_reached", tenant.pk, "", 1),
    ]


def test_rate_limit_is_counted_for_the_tenant(client: Client) -> None:
    tenant = Tenant.objects.create(name="Hasty")
    issued = HashId.issue(tenant)
    rate_spent(tenant)
    assert post(client, {"hash_id": issued.secret}) == 429
    assert counts() == [(429, "rate_limited", tenant.pk, "", 1)]


def add_refusals(tenant: Tenant, days_ago: int, status: int, hits: int) -> None:
    day = timezone.now().date() - timedelta(days=days_ago)
    code = "invalid_credentials" if status == 401 else "limit_reached"
    Refusal.objects.create(day=day, code=code, status=status, tenant_id=tenant.pk, hits=hits)


def test_usage_page_and_csv_show_refusals_in_the_range(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Refused", request_limit=10, requests_used=10)
    add_refusals(tenant, 0, 401, 2)
    add_refusals(tenant, 0, 429, 5)
    add_refusals(tenant, 10, 429, 7)
    page = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/usage/").content.decode()
    assert '<span id="refused-401">2</span>' in page
    assert '<span id="refused-429">12</span>' in page
    today = timezone.now().date()
    first = today - timedelta(days=2)
    query = {"from": f"{first}", "to": f"{today}"}
    narrow = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/usage/", query)
    assert '<span id="refused-429">5</span>' in narrow.content.decode()
    assert f"usage.csv?from={first}&amp;to={today}" in narrow.content.decode()
    exported = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/usage.csv", query)
    assert exported["Content-Type"].startswith("text/csv")
    assert "attachment" in exported["Content-Disposition"]
    lines = exported.content.decode().splitlines()
    assert lines[0] == "day,live,spoof,refused_422,refused_401,refused_429"
    assert len(lines) == 4 and lines[-1] == f"{today},0,0,0,2,5"
    assert lines[1] == f"{first},0,0,0,0,0"


def test_reversed_or_bad_dates_fall_back(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Dates")
    url = f"/admin/accounts/tenant/{tenant.pk}/usage.csv"
    reversed_range = admin_client.get(url, {"from": "2026-01-05", "to": "2026-01-01"})
    assert len(reversed_range.content.decode().splitlines()) == 6
    default = admin_client.get(url, {"from": "garbage"})
    assert len(default.content.decode().splitlines()) == 31


def test_metrics_count_refusals(client: Client) -> None:
    post(client, {"hash_id": "unknown"}, ip="198.51.100.20")
    text = client.get("/metrics").content.decode()
    line = (
        'facia_liveness_refusals_total{client_bucket="198.51.100.0/24",reason='
        '"invalid_credentials",status="401",tenant="",tenant_id=""}'
    )
    assert line in text


def test_prune_checks_drops_the_counts_of_older_days() -> None:
    tenant = Tenant.objects.create(name="Pruned")
    add_refusals(tenant, 40, 401, 1)
    add_refusals(tenant, 5, 401, 1)
    out = StringIO()
    call_command("prune_checks", "--days", "30", stdout=out)
    assert "1 daily refusal count(s)" in out.getvalue()
    assert list(Refusal.objects.values_list("hits", flat=True)) == [1]
    assert Refusal.objects.get().day == timezone.now().date() - timedelta(days=5)


def test_client_bucket_labels_are_bounded_per_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_seen_buckets", set())
    monkeypatch.setattr(metrics, "MAX_CLIENT_BUCKETS", 2)
    seen = ["a/24", "b/24", "a/24", "c/24", "", "b/24"]
    labels = [metrics.bounded_bucket(bucket) for bucket in seen]
    assert labels == ["a/24", "b/24", "a/24", "other", "", "b/24"]


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "1\u00b9", "x", ""])
def test_the_tenant_filter_takes_only_ascii_digits(admin_client: Any, value: str) -> None:
    """A tenant id the filter cannot read lists every refusal: "²" is a digit to str.isdigit
    but not to int() (a 500 before), and "١" (Arabic-Indic one) would have named tenant 1."""
    tenants = [Tenant.objects.create(name=name) for name in ("Filtered", "Other")]
    for tenant in tenants:
        add_refusals(tenant, 0, 401, 3)
    response = admin_client.get("/admin/guard/refusal/", {"tenant": value})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    named = admin_client.get("/admin/guard/refusal/", {"tenant": str(tenants[0].pk)})
    assert named.context["cl"].result_count == 1
