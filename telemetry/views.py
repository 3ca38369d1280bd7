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
from prometheus_client.samples import Sample

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


# What a scrape makes of a sample's labels, by its labels: the labels it is written with (the
# same, or others), or None to leave it out. Each app above may add a rule, made once per
# scrape (None: every sample as it is this time).
Relabel = Callable[[Mapping[str, str]], Mapping[str, str] | None]
_relabel_rules: list[Callable[[], Relabel | None]] = []


def on_scrape(hook: Callable[[], object]) -> None:
    """Call ``hook`` before each scrape (once, however often it is added)."""
    if hook not in _before_scrape:
        _before_scrape.append(hook)


def relabel_samples(rule: Callable[[], Relabel | None]) -> None:
    """Write each sample with the labels ``rule()``'s function gives it, at each scrape
    (``rule`` added once, however often)."""
    if rule not in _relabel_rules:
        _relabel_rules.append(rule)


def relabelled(labels: Mapping[str, str], rules: list[Relabel]) -> Mapping[str, str] | None:
    for rule in rules:
        written = rule(labels)
        if written is None:
            return None
        labels = written
    return labels


def combined(earlier: Sample, sample: Sample) -> float:
    """Two samples of a counter (or a histogram) given the same labels: their sum, the count
    of both; of its ``_created`` (when it began, written outside multiprocess mode), the
    first."""
    if sample.name.endswith("_created"):
        return min(earlier.value, sample.value)
    return earlier.value + sample.value


def merged(samples: Iterable[Sample], rules: list[Relabel]) -> list[Sample]:
    """``samples`` relabelled by ``rules``; those that end with the same name and labels
    ``combined`` into one, in the place of the first (a tenant's counts under each name it
    had): of one series written twice in a scrape, Prometheus keeps one line and drops the
    other as a duplicate."""
    kept: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
    for sample in samples:
        labels = relabelled(sample.labels, rules)
        if labels is None:
            continue
        key = (sample.name, tuple(sorted(labels.items())))
        earlier = kept.get(key)
        value = sample.value if earlier is None else combined(earlier, sample)
        kept[key] = sample._replace(labels=dict(labels), value=value)
    return list(kept.values())


class _Relabelled(Collector):
    """``source``'s families, their samples ``merged`` by ``rules``."""

    def __init__(self, source: Collector | CollectorRegistry, rules: list[Relabel]) -> None:
        self.source, self.rules = source, rules

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            family.samples = merged(family.samples, self.rules)
            yield family


def process_metrics() -> bytes:
    """Every worker's samples in multiprocess mode, else this process's own registry, as the
    relabel rules write them."""
    rules = [r for rule in _relabel_rules if (r := rule()) is not None]
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry(auto_describe=False)
    if not path:
        registry.register(_Relabelled(REGISTRY, rules))
        return generate_latest(registry)
    drop_vanished_workers(path)
    registry.register(_Relabelled(MultiProcessCollector(None, path), rules))
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
