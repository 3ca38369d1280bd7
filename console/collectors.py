"""Per-tenant quota, read from the database when /metrics is scraped (never on requests), and
which tenants' counters a scrape keeps, under which name.

Neither asks a database that the scrape's readiness probe (``liveness.runtime``, run first)
has just found not answering, nor one that the other's query found so: each query would wait
DATABASE_TIMEOUT_S again, 9 s a scrape in all with the default 3 s, 15 s with 5 s (past
Prometheus' 10 s scrape_timeout, which loses the whole scrape, facia_worker_ready=0 with it).
Each says once per outage what it left out (a WARNING), each repeat at DEBUG, as the runtime
does: a WARNING per scrape is one per worker every scrape interval for the whole outage."""

import logging
from collections.abc import Iterator, Mapping

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from accounts.models import Tenant
from liveness.runtime import Condition, database_failed, database_held_down
from telemetry.logs import database_error
from telemetry.views import Relabel

log = logging.getLogger(__name__)

DOWN = "the database did not answer this worker's last try"
QUOTAS_LEFT_OUT = Condition(log)
NAMES_UNREAD = Condition(log)


def _unread(exc: DatabaseError) -> str:
    """What to log of ``exc``, a query's error (no password); a database that did not answer
    is held down (``database_failed``), so this scrape's other query does not wait again."""
    database_failed(exc)
    return database_error(exc)


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
        # The database is down: the scrape keeps every worker's own samples (readiness,
        # errors), the ones an outage needs, and leaves these gauges out.
        if database_held_down():
            QUOTAS_LEFT_OUT.met("per-tenant quota gauges left out of /metrics: %s", DOWN)
            return
        try:
            rows = list(
                Tenant.objects.filter(is_active=True).values_list(
                    "pk", "name", "request_limit", "requests_used"
                )
            )
        except DatabaseError as exc:
            QUOTAS_LEFT_OUT.met("per-tenant quota gauges left out of /metrics: %s", _unread(exc))
            return
        QUOTAS_LEFT_OUT.over("per-tenant quota gauges back in /metrics")
        for pk, name, request_limit, requests_used in rows:
            labels = [str(pk), name]
            used.add_metric(labels, requests_used)
            if request_limit is not None:
                limit.add_metric(labels, request_limit)
                remaining.add_metric(labels, max(request_limit - requests_used, 0))
        yield from (remaining, used, limit)


QUOTAS = TenantQuotaCollector()  # /metrics reads it (telemetry.views.SCRAPED)


def current_tenants() -> Relabel | None:
    """A scrape's rule for a sample labelled with a tenant id: left out when that tenant no
    longer exists, else labelled with its current name (``telemetry.views.merged`` sums the
    counts of each name it had). prometheus_client cannot drop a label set in multiprocess
    mode (each worker's file keeps it): without the rule, a deleted tenant's verdict and
    refusal counters would stay in every scrape until the server restarts, and a renamed
    one's under each name it had, a series more with each rename. Ids are never reused
    (SQLite's AUTOINCREMENT, PostgreSQL's sequence). None (every sample as written) when the
    database cannot be read."""
    kept = "deleted and renamed tenants' counters kept in /metrics this time: %s"
    if database_held_down():
        NAMES_UNREAD.met(kept, DOWN)
        return None
    try:
        names = {str(pk): name for pk, name in Tenant.objects.values_list("pk", "name")}
    except DatabaseError as exc:
        NAMES_UNREAD.met(kept, _unread(exc))
        return None
    NAMES_UNREAD.over("deleted and renamed tenants' counters relabelled in /metrics again")

    def current(labels: Mapping[str, str]) -> Mapping[str, str] | None:
        tenant_id = labels.get("tenant_id", "")
        if not tenant_id:
            return labels  # a refusal naming no tenant
        if tenant_id not in names:
            return None
        return {**labels, "tenant": names[tenant_id]}

    return current
