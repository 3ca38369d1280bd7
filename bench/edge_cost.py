"""What the service costs around the engine on one /liveness verdict (201): Django's
middleware, admission, the quota unit and the check's record, metrics, logging and the answer,
as CPU time per request, in one process.

    python -m bench.edge_cost [--size 640x480] [--rounds 12] [--per-round 25] [--pyinstrument]
        [--idempotency-key]

The seed's body goes through Django's test client, in-process, as a worker serves it: a real
tenant on its own SQLite file, logging at the production level (INFO, JSON lines, written to
/dev/null) and prometheus in multiprocess mode (sample files, as under gunicorn). Rounds of
requests alternate with rounds of the bare engine (``engine.check`` on the same JPEG bytes),
the order swapped every round, so a busy machine slows both alike. CPU time
(``time.process_time``: every thread of the process, OpenVINO's included) is the figure to read
on a shared machine; wall time is printed beside it. "in-request engine" is the CPU time spent
inside the engine's decode and judge during the requests themselves: the request less that is
the edge without the noise of a second measurement. "edge alone" runs the same requests with
the engine's decode and judge answering at once from one earlier call (the request's own work
only, with warm caches: a floor the real edge stays above). ``--idempotency-key`` sends a new
Idempotency-Key with every request (each is judged, its answer kept) and times a replay (the
same key again: answered from the kept answer). Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.gunicorn import manage
from bench.hotpath import django_in_process
from bench.images import parse_size, seed_body, selfie_jpeg
from bench.load import bench_env


def _setup(workdir: Path) -> str:
    """Database, tenant, Django; the tenant's hash_id."""
    env = bench_env(workdir)
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # before prometheus_client is imported
    manage(env, "migrate", "--noinput", "-v", "0")
    hash_id = manage(env, "create_tenant", "edge-cost").strip().splitlines()[-1]
    django_in_process(env)
    return hash_id


def _cpu_wall(run: Callable[[], None], n: int) -> tuple[float, float]:
    """CPU and wall ms per call of ``run`` over ``n`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        run()
    return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n


def _count_engine(engine: Any, spent: list[float]) -> None:
    """Add the CPU time of every call of the engine's decode and judge to ``spent[0]``."""
    for name in ("decode", "judge"):
        original = getattr(engine, name)

        def timed(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - start

        setattr(engine, name, functools.wraps(original)(timed))


def _replay(engine: Any) -> Callable[[], None]:
    """Make the engine's decode and judge answer their last result at once; returns the undo."""
    saved = {name: getattr(engine, name) for name in ("decode", "judge")}
    for name, original in saved.items():
        last: list[Any] = []

        def replayed(*args: Any, _original: Any = original, _last: list[Any] = last) -> Any:
            if not _last:
                _last.append(_original(*args))
            return _last[0]

        setattr(engine, name, replayed)

    def undo() -> None:
        for name, original in saved.items():
            setattr(engine, name, original)

    return undo


def _queries(post: Callable[[], None]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        post()
    print(f"SQL statements per 201: {len(captured.captured_queries)}")
    for query in captured.captured_queries:
        print(f"  {query['sql'][:110]}")


def _profile(post: Callable[[], None], n: int) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(n):
        post()
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--per-round", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true", help="also profile the requests")
    parser.add_argument(
        "--idempotency-key", action="store_true", help="a new key per request; time a replay"
    )
    args = parser.parse_args(argv)
    hash_id = _setup(Path(tempfile.mkdtemp(prefix="facia-edge-")))
    from django.test import Client

    from liveness.runtime import get_engine

    engine = get_engine()
    jpeg = selfie_jpeg(*parse_size(args.size))
    body = seed_body(jpeg, hash_id)
    client = Client(HTTP_HOST="127.0.0.1")

    def post(key: str | None = None) -> None:
        if key is None and args.idempotency_key:
            key = uuid.uuid4().hex
        headers = None if key is None else {"Idempotency-Key": key}
        reply = client.post("/liveness", body, content_type="application/json", headers=headers)
        assert reply.status_code == 201, reply.content

    def bare() -> None:
        engine.check(jpeg)

    for _ in range(20):
        post()
        bare()
    _queries(post)
    inside = [0.0]
    _count_engine(engine, inside)
    full: list[tuple[float, float]] = []
    alone: list[tuple[float, float]] = []
    edge_alone: list[float] = []
    in_request: list[float] = []
    n = args.per_round
    for round_ in range(args.rounds):
        for which in ("post", "bare") if round_ % 2 == 0 else ("bare", "post"):
            if which == "post":
                inside[0] = 0.0
                full.append(_cpu_wall(post, n))
                in_request.append(inside[0] * 1000 / n)
            else:
                alone.append(_cpu_wall(bare, n))
        undo = _replay(engine)
        edge_alone.append(_cpu_wall(post, n)[0])
        undo()
    cpu = statistics.median(c for c, _ in full)
    bare_cpu = statistics.median(c for c, _ in alone)
    engine_in = statistics.median(in_request)
    edges = [c - e for (c, _), e in zip(full, in_request, strict=True)]
    wall = statistics.median(w for _, w in full)
    bare_wall = statistics.median(w for _, w in alone)
    print(f"\n/liveness in-process, {args.size} seed body ({len(body) / 1e3:.0f} kB), ", end="")
    print(f"{args.rounds} rounds x {n}; medians over rounds, ms per request")
    print(f"{'':<34}{'CPU':>8}{'wall':>8}")
    print(f"{'full request':<34}{cpu:>8.3f}{wall:>8.3f}")
    print(f"{'bare engine.check':<34}{bare_cpu:>8.3f}{bare_wall:>8.3f}")
    print(f"{'in-request engine (decode+judge)':<34}{engine_in:>8.3f}")
    print(f"{'edge = full - bare engine':<34}{cpu - bare_cpu:>8.3f}{wall - bare_wall:>8.3f}")
    print(f"{'edge = full - in-request engine':<34}{statistics.median(edges):>8.3f}")
    print(f"{'edge alone (engine replayed)':<34}{statistics.median(edge_alone):>8.3f}")
    print(f"full / bare: CPU {cpu / bare_cpu:.3f}, wall {wall / bare_wall:.3f}")
    if args.idempotency_key:
        _replays(functools.partial(post, "replayed"), n)
    if args.pyinstrument:
        _profile(post, args.rounds * n)


def _replays(replay: Callable[[], None], n: int) -> None:
    """The first request with one key, then ``n`` replays of it."""
    replay()
    print("replay of a kept answer:", end=" ")
    _queries(replay)
    cpu, wall = _cpu_wall(replay, n)
    print(f"replay: CPU {cpu:.3f} ms, wall {wall:.3f} ms per request")


if __name__ == "__main__":
    main()
