"""GET /metrics in the Prometheus text format."""

import os

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from console.collectors import TenantQuotaCollector
from liveness.runtime import not_ready_reason
from telemetry.access import may_read_metrics

TENANTS = CollectorRegistry(auto_describe=False)
TENANTS.register(TenantQuotaCollector())


def process_metrics() -> bytes:
    """Every worker's samples in multiprocess mode, else this process's own registry."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path)
    return generate_latest(registry)


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_read_metrics(request):
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    not_ready_reason()  # this worker's readiness gauge, fresh (cached probes)
    body = process_metrics() + generate_latest(TENANTS)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
