"""GET /metrics in the Prometheus text format, for a client ``may_read_metrics`` admits. The
site's URLconf answers any other method (``liveness.jsonapi.safe_methods_only``: our JSON 405,
as every endpoint answers it; telemetry may not import liveness).

Telemetry knows no models: the apps above add what a scrape reads from the database
(``SCRAPED``: console's per-tenant quota) and what it refreshes first (``on_scrape``:
liveness's readiness gauge), in their ``AppConfig.ready``."""

import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from telemetry.access import may_read_metrics

# The 403's sentence, JSON as every error on an API path (liveness.answers' shape: telemetry
# may not import it). It names what admits a scraper, never the token.
FORBIDDEN = (
    "Not allowed to read the metrics: send Authorization: Bearer <METRICS_TOKEN>, or scrape "
    "from METRICS_ALLOWED_NETWORKS."
)
# Collectors read at scrape time only, never on requests.
SCRAPED = CollectorRegistry(auto_describe=False)
_before_scrape: list[Callable[[], object]] = []


# Which samples of the counters a scrape keeps, by their labels: each app above may add a
# rule, made once per scrape (None: keep everything this time).
Keep = Callable[[Mapping[str, str]], bool]
_keep_rules: list[Callable[[], Keep | None]] = []


def on_scrape(hook: Callable[[], object]) -> None:
    """Call ``hook`` before each scrape (once, however often it is added)."""
    if hook not in _before_scrape:
        _before_scrape.append(hook)


def keep_samples(rule: Callable[[], Keep | None]) -> None:
    """Keep only the samples ``rule()``'s predicate accepts, at each scrape (``rule`` added
    once, however often)."""
    if rule not in _keep_rules:
        _keep_rules.append(rule)


class _Kept(Collector):
    """``source``'s families with the samples every ``keep`` accepts."""

    def __init__(self, source: Collector | CollectorRegistry, keep: list[Keep]) -> None:
        self.source, self.keep = source, keep

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            family.samples = [s for s in family.samples if all(k(s.labels) for k in self.keep)]
            yield family


def process_metrics() -> bytes:
    """Every worker's samples in multiprocess mode, else this process's own registry; only
    those the keep rules accept."""
    keep = [k for rule in _keep_rules if (k := rule()) is not None]
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry(auto_describe=False)
    if not path:
        registry.register(_Kept(REGISTRY, keep))
        return generate_latest(registry)
    drop_vanished_workers(path)
    registry.register(_Kept(MultiProcessCollector(None, path), keep))
    return generate_latest(registry)


def drop_vanished_workers(path: str) -> None:
    """The live gauges (facia_worker_ready) of workers gone without their master's child_exit:
    an old master killed (SIGKILL) after a SIGUSR2, its workers exiting on their own, left
    their samples, at 1, in the directory the new generation shares, for good."""
    for live in Path(path).glob("gauge_live*_*.db"):
        pid = live.stem.rsplit("_", 1)[1]
        if pid.isdigit() and not _running(int(pid)):  # a file not named by a pid is not ours
            with suppress(FileNotFoundError):  # another worker's scrape was first
                mark_process_dead(int(pid), path)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie does not: such a worker, orphaned when its master was
    killed, stays one until the new parent (a container's init) collects it, if ever."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going as it was read
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@csrf_exempt  # else CSRF answers another method 403 (HTML) before the URLconf's 405
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_read_metrics(request):
        return JsonResponse({"error": FORBIDDEN}, status=403)
    for hook in _before_scrape:
        hook()
    body = process_metrics() + generate_latest(SCRAPED)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
