"""Prometheus metrics. Works with several gunicorn workers (multiprocess mode).

gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker imports this module; each
worker then writes its samples to files there, and /metrics sums them at scrape time.
Counters, histograms and one per-worker gauge live here; per-tenant quota is read from the
database when scraped (see :mod:`console.collectors`). The request path only pays for a few
increments.
"""

import functools
import logging
from collections.abc import Callable, Mapping
from typing import ParamSpec

from prometheus_client import Counter, Gauge, Histogram

from telemetry import metric_files

log = logging.getLogger(__name__)
metric_files.install()
_P = ParamSpec("_P")
_warned = False


def never_fails(record: Callable[_P, None]) -> Callable[_P, None]:
    """A sample that cannot be written (its file cannot grow: a full disk) is dropped, with one
    warning per process: a request is answered whatever its metrics meet."""

    @functools.wraps(record)
    def recording(*args: _P.args, **kwargs: _P.kwargs) -> None:
        global _warned
        try:
            record(*args, **kwargs)
        except OSError as exc:
            if not _warned:
                log.warning("metric samples dropped (PROMETHEUS_MULTIPROC_DIR): %s", exc)
            _warned = True

    return recording


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGES = ("decode", "detect", "classify")

HTTP_REQUESTS = Counter(
    "facia_http_requests",
    "HTTP requests answered, by endpoint, method and status code.",
    ["endpoint", "method", "status"],
)
HTTP_DURATION = Histogram(
    "facia_http_request_duration_seconds",
    "Time spent in Django per request, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
VERDICTS = Counter(
    "facia_liveness_verdicts",
    "Outcomes of authenticated checks (/liveness and session selfies): live, spoof, or refused "
    "(with a reason); unsure: a session selfie held for its head-turn challenge, whose decision "
    "counts again as live or spoof with reason challenge.",
    ["tenant_id", "tenant", "outcome", "reason"],
)
REFUSALS = Counter(
    "facia_liveness_refusals",
    "401 and 429 answers of /liveness and the sessions API: per tenant where the hash_id names "
    "one, else per client address bucket (/24 or /64).",
    ["status", "reason", "tenant_id", "tenant", "client_bucket"],
)
WORKER_REFUSALS = Counter(
    "facia_worker_refusals",
    "Connections the gunicorn worker answered 429 or 503 itself, before Django (no access "
    "line, not in facia_http_requests_total), by status and reason.",
    ["status", "reason"],
)
STAGE_SECONDS = Histogram(
    "facia_liveness_stage_seconds",
    "Time per pipeline stage of a completed check (decode, detect, classify) and in total.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
_worker_ready: Gauge | None = None


@never_fails
def set_worker_ready(ready: bool) -> None:
    """This worker's readiness gauge. Created on first use: a gauge writes its sample file when
    created, and a manage.py command that imports this module must not leave one behind."""
    global _worker_ready
    if _worker_ready is None:
        # "liveall": one sample per live worker (label ``pid``); child_exit drops a dead one's.
        _worker_ready = Gauge(
            "facia_worker_ready",
            "1 while this worker's engine is warm and it can record checks (its last readiness "
            "evaluation: after warm-up, on /status_check and on /metrics), else 0.",
            multiprocess_mode="liveall",
        )
    _worker_ready.set(1 if ready else 0)


# A client names any method it likes (any token passes gunicorn): as a label, 5,000 random ones
# grew /metrics from 2 KB to 430 KB and the worker's prometheus files from 192 KB to 1.1 MB, for
# good; as "other", to 5 KB, the files unchanged (python -m bench.growth, docs/operator/
# observability.md).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


@never_fails
def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(endpoint, method_label(method), str(status)).inc()
    HTTP_DURATION.labels(endpoint).observe(seconds)


@never_fails
def observe_verdict(tenant_id: int, tenant: str, outcome: str, reason: str = "") -> None:
    VERDICTS.labels(str(tenant_id), tenant, outcome, reason).inc()


def observe_rejection(tenant_id: int, tenant: str, reason: str) -> None:
    """A request rejected before the engine gave a verdict (counted as outcome "refused")."""
    observe_verdict(tenant_id, tenant, "refused", reason)


# Distinct client buckets a worker labels before it counts the rest as "other": refusals from
# a spray of addresses (IPv6 /64s are plentiful) would otherwise add a sample per bucket to
# every worker's metric files, without bound. The database counts (guard.Refusal) keep them all.
MAX_CLIENT_BUCKETS = 256
_seen_buckets: set[str] = set()


def bounded_bucket(client_bucket: str) -> str:
    if client_bucket in _seen_buckets or not client_bucket:
        return client_bucket
    if len(_seen_buckets) >= MAX_CLIENT_BUCKETS:
        return "other"
    _seen_buckets.add(client_bucket)
    return client_bucket


@never_fails
def observe_refusal(
    status: int, reason: str, tenant_id: int | None, tenant: str, client_bucket: str
) -> None:
    bucket = bounded_bucket(client_bucket)
    REFUSALS.labels(str(status), reason, str(tenant_id or ""), tenant, bucket).inc()


@never_fails
def observe_stages(timings_ms: Mapping[str, float], total_ms: float) -> None:
    for stage in STAGES:
        if stage in timings_ms:
            STAGE_SECONDS.labels(stage).observe(timings_ms[stage] / 1000)
    STAGE_SECONDS.labels("total").observe(total_ms / 1000)


@never_fails
def count_worker_refusal(status: int, reason: str) -> None:
    """One of the worker's own refusals (facia_site.worker), under a flood of them: 2.7 us
    each in multiprocess mode (timeit, 100,000 calls)."""
    WORKER_REFUSALS.labels(str(status), reason).inc()
