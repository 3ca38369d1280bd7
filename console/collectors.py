"""Per-tenant quota, read from the database when /metrics is scraped (never on requests)."""

import logging
from collections.abc import Iterator

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
