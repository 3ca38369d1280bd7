"""Per-tenant quota, read from the database when /metrics is scraped (never on requests), and
which tenants' counters a scrape keeps."""

import logging
from collections.abc import Callable, Iterator, Mapping

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from accounts.models import Tenant

log = logging.getLogger(__name__)

LABELS = ["tenant_id", "tenant"]


class TenantQuotaCollector(Collector):
    def describe(self) -> list[GaugeMetricFamily]:
        return []  # no database access when registered

    def collect(self) -> Iterator[GaugeMetricFamily]:
        remaining = GaugeMetricFamily(
            "facia_tenant_quota_remaining",
            "Requests left before the tenant's limit (tenants with a limit only).",
            labels=LABELS,
        )
        used = GaugeMetricFamily(
            "facia_tenant_requests_used", "Requests counted against the quota.", labels=LABELS
        )
        limit = GaugeMetricFamily(
            "facia_tenant_request_limit",
            "The tenant's request limit, when it has one.",
            labels=LABELS,
        )
        try:
            rows = list(
                Tenant.objects.filter(is_active=True).values_list(
                    "pk", "name", "request_limit", "requests_used"
                )
            )
        except DatabaseError as exc:
            # The database is down: the scrape keeps every worker's own samples (readiness,
            # errors), the ones an outage needs, and leaves these gauges out.
            log.warning("per-tenant quota gauges left out of /metrics: %s", exc)
            return
        for pk, name, request_limit, requests_used in rows:
            labels = [str(pk), name]
            used.add_metric(labels, requests_used)
            if request_limit is not None:
                limit.add_metric(labels, request_limit)
                remaining.add_metric(labels, max(request_limit - requests_used, 0))
        yield from (remaining, used, limit)


QUOTAS = TenantQuotaCollector()  # /metrics reads it (telemetry.views.SCRAPED)


def existing_tenants() -> Callable[[Mapping[str, str]], bool] | None:
    """A scrape's rule: a sample labelled with a tenant id is kept while that tenant exists.
    A deleted tenant's verdict and refusal counters, labelled with its id and name, stayed in
    every scrape until the server restarted: prometheus_client cannot drop a label set in
    multiprocess mode (each worker's file keeps it). Ids are never reused (SQLite's
    AUTOINCREMENT, PostgreSQL's sequence). None (keep everything) when the database cannot
    be read."""
    try:
        ids = {str(pk) for pk in Tenant.objects.values_list("pk", flat=True)}
    except DatabaseError as exc:
        log.warning("deleted tenants' counters kept in /metrics this time: %s", exc)
        return None
    return lambda labels: labels.get("tenant_id", "") in ids or not labels.get("tenant_id")
