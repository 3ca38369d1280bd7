"""Where a /liveness request's time goes above the engine, per stage, in one process.

    python -m bench.hotpath [--size 640x480] [--requests 300] [--pyinstrument]

Posts the seed's body through Django's full stack in-process (middleware, DRF view, JSON,
authentication, throttles, quota, the check's transaction, metrics, logging) with the
production logging level (INFO, JSON lines; sent to /dev/null). Each stage is timed by
wrapping its function; "rest" is the request's total less every stage (Django's handler,
middleware, DRF's request wrapping and response rendering). What gunicorn and the socket add
shows as the gap to `make bench`'s one-client median. ``--pyinstrument`` also prints a
sampled profile of the same requests.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.images import parse_size, seed_body, selfie_jpeg
from bench.load import prepare

# (label, module, attribute): the functions each stage is the time of, wrapped in the module
# the request looks them up in (LivenessView.post finds read_body in liveness.views).
STAGES = (
    ("body read", "liveness.views", "read_body"),
    ("JSON parse (json.loads)", "liveness.views", "parse_object"),
    ("auth: failure throttle", "guard.throttle", "auth_blocked"),
    ("auth: hash_id lookup", "accounts.models", "HashId.tenant_for"),
    ("tenant rate limit", "guard.throttle", "tenant_rate_exceeded"),
    ("quota pre-check", "accounts.models", "Tenant.has_room"),
    ("base64 (data URI)", "liveness.checks", "image_bytes"),
    ("decode (probe + JPEG)", "ml.engine", "LivenessEngine.decode"),
    ("engine (detect + classify)", "ml.engine", "LivenessEngine.analyse"),
    ("record (quota UPDATE + INSERT + log)", "liveness.checks", "record"),
    ("metrics", "telemetry.metrics", "observe_verdict"),
    ("metrics", "telemetry.metrics", "observe_stages"),
    ("metrics", "telemetry.metrics", "observe_request"),
    ("response JSON", "liveness.answers", "success"),
)
# Inside a stage above (printed indented, not added again).
PARTS = (
    ("  quota UPDATE", "accounts.models", "Tenant.reserve_unit"),
    ("  check INSERT", "liveness.models", "LivenessCheck.insert"),
    ("  check log line", "liveness.checks", "_log_check"),
)


def _wrap(spent: dict[str, float], label: str, module: str, name: str) -> None:
    holder: Any = sys.modules[module]
    *path, attribute = name.split(".")
    for part in path:
        holder = getattr(holder, part)
    original: Callable[..., Any] = getattr(holder, attribute)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    setattr(holder, attribute, timed)


def _timed_run(post: Callable[[], None], n: int) -> float:
    """Mean seconds per request over ``n`` requests."""
    start = time.perf_counter()
    for _ in range(n):
        post()
    return (time.perf_counter() - start) / n


def django_in_process(env: dict[str, str]) -> None:
    """Django set up in this process from ``env`` (a bench's), at the production log level
    (INFO): every JSON line is formatted as in service, then sent to /dev/null."""
    env.pop("LOG_LEVEL", None)  # bench_env quiets it
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)
    _, env, hash_id = prepare("hotpath", "wrk")
    django_in_process(env)
    from django.test import Client

    from liveness.runtime import get_engine

    get_engine()
    import accounts.models  # noqa: F401  (the modules the stages live in)
    import liveness.answers  # noqa: F401
    import liveness.checks  # noqa: F401
    import liveness.views  # noqa: F401
    import telemetry.metrics  # noqa: F401

    body = seed_body(selfie_jpeg(*parse_size(args.size)), hash_id)
    client = Client(HTTP_HOST="127.0.0.1")

    def post() -> None:
        reply = client.post("/liveness", body, content_type="application/json")
        assert reply.status_code == 201, reply.content

    for _ in range(20):
        post()
    plain = [_timed_run(post, args.requests) for _ in range(2)]
    logging.disable(logging.INFO)
    quiet = [_timed_run(post, args.requests) for _ in range(2)]
    logging.disable(logging.NOTSET)
    sql: list[float] = []
    from django.db import connection

    def count_sql(execute: Callable[..., Any], *a: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(*a)
        finally:
            sql.append(time.perf_counter() - start)

    with connection.execute_wrapper(count_sql):
        _timed_run(post, args.requests)
    spent = {label: 0.0 for label, _, _ in (*STAGES, *PARTS)}
    for label, module, name in (*STAGES, *PARTS):
        _wrap(spent, label, module, name)
    totals = []
    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    for _ in range(args.requests):
        start = time.perf_counter()
        post()
        totals.append(time.perf_counter() - start)
    if profiler is not None:
        profiler.stop()
    n = args.requests
    total_ms = sum(totals) * 1000 / n
    print(f"/liveness in-process, {args.size} seed body ({len(body) / 1e3:.0f} kB), {n} requests")
    print(f"{'stage':<40}{'ms/request':>11}{'share':>8}")
    accounted = 0.0
    for label, ms in ((k, v * 1000 / n) for k, v in spent.items()):
        if not label.startswith(" "):
            accounted += ms
        print(f"{label:<40}{ms:>11.3f}{100 * ms / total_ms:>7.1f}%")
    rest = total_ms - accounted
    print(
        f"{'rest (Django, middleware, DRF, render)':<40}{rest:>11.3f}{100 * rest / total_ms:>7.1f}%"
    )
    above = (
        total_ms - (spent["engine (detect + classify)"] + spent["decode (probe + JPEG)"]) * 1000 / n
    )
    print(f"{'total (mean)':<40}{total_ms:>11.3f}; median {statistics.median(totals) * 1000:.3f}")
    print(f"above the engine (all but decode, detect, classify): {above:.3f} ms per request")
    logging_ms = (min(plain) - min(quiet)) * 1000
    print(
        f"logging (INFO, two JSON lines per request) vs logging disabled, back to back: "
        f"{min(plain) * 1000:.3f} vs {min(quiet) * 1000:.3f} ms per request = {logging_ms:.3f} ms"
    )
    print(
        f"database: {len(sql) / n:.1f} statements per request, {sum(sql) * 1000 / n:.3f} ms per "
        f"request inside the driver (the rest of the ORM's time is Python above it)"
    )
    if profiler is not None:
        print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
