"""Issue 23's HTTP-against-bare ratios, each from interleaved rounds in one run: a gunicorn
started as `make serve` (bench.load) and persistent bare engines (bench.engine_cost's children:
one pinned to each core, one not pinned) stay up while short segments take turns, the order
reversed every other round, so a drift of this shared VM's speed (the bare one-core time moved
8.4-10.7 ms between three back-to-back sequential runs) meets both sides of a ratio alike:

- bare, all cores: every pinned engine at once, images/s | wrk, 8 clients: requests/s
- bare, one engine (the machine otherwise idle): median ms per check | wrk, 1 client: p50
- wrk, 1 client, phone photo: p50 (against the 1-client p50 beside it)

Each round prints its ratios; the median over rounds, with min-max, is what `make bench`
compares with the targets.

    python -m bench.ratios [--size 640x480] [--large 4000x3000] [--concurrency 8]
                           [--duration 2] [--http-rounds 8] [--port 5091]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import engine_cost, load
from bench.images import REPO, seed_body

# ratio name -> (numerator, denominator) of one round's figures
RATIOS = {
    "rate": ("rps", "bare_rps"),  # 8 clients / bare all cores
    "edge": ("p50_ms", "bare_ms"),  # 1 client p50 / bare one engine
    "photo": ("photo_ms", "p50_ms"),  # phone photo p50 / 640x480 p50, 1 client each
}


class Bare:
    """Persistent engines: one pinned to each core (the all-cores rate, one single-threaded
    engine per core as gunicorn runs them) and one on any core (one engine's time per check,
    as bench.pipeline measures it). Each segment runs about ``seconds``: its count of checks
    follows the engine's last time per check."""

    def __init__(self, images: dict[str, str], seconds: float) -> None:
        self.seconds = seconds
        self.ms: dict[int, float] = {}  # id(child) -> wall ms per check, last segment
        self.single = engine_cost.start(REPO, None, images)
        cores = sorted(os.sched_getaffinity(0))
        self.pinned = [engine_cost.start(REPO, core, images) for core in cores]

    def _count(self, child: engine_cost.Child) -> int:
        return max(5, round(1000 * self.seconds / self.ms.get(id(child), 20.0)))

    def _run(self, children: list[engine_cost.Child]) -> list[dict[str, float]]:
        counts = [self._count(child) for child in children]
        for child, count in zip(children, counts, strict=True):
            child.send("selfie", count)
        answers = [child.receive() for child in children]
        for child, answer in zip(children, answers, strict=True):
            self.ms[id(child)] = answer["wall_ms"]
        return answers

    def all_cores(self) -> float:
        """Images/s of the pinned engines run together (the sum of each one's rate)."""
        return sum(1000 / answer["wall_ms"] for answer in self._run(self.pinned))

    def one(self) -> float:
        """Median wall ms of one check of the engine on any core."""
        return self._run([self.single])[0]["p50_ms"]

    def close(self) -> None:
        for child in [self.single, *self.pinned]:
            child.close()


@dataclass
class Measured:
    """Every round's figures, the wrk runs of the last round (the seed's report shape), the
    errors of every wrk run, start-up and the workers' RSS after the rounds."""

    rounds: list[dict[str, float]]
    last: dict[str, load.Result]
    errors: int
    startup_s: float
    rss_mb: list[float]

    def median(self, key: str) -> float:
        return statistics.median(got[key] for got in self.rounds)

    def spread(self, key: str) -> str:
        return engine_cost.spread([got[key] for got in self.rounds])


def one_round(
    index: int, bare: Bare, http: Callable[[str, int], load.Result], concurrency: int
) -> tuple[dict[str, float], dict[str, load.Result]]:
    """One round's segments, in reverse order every other round; its figures and wrk runs."""
    got: dict[str, float] = {}
    runs: dict[str, load.Result] = {}

    def wrk(key: str, body: str, clients: int) -> None:
        runs[key] = http(body, clients)

    segments: list[Callable[[], None]] = [
        lambda: got.update(bare_rps=bare.all_cores()),
        lambda: wrk("concurrent", "selfie", concurrency),
        lambda: got.update(bare_ms=bare.one()),
        lambda: wrk("single", "selfie", 1),
        lambda: wrk("photo", "photo", 1),
    ]
    for segment in segments[:: -1 if index % 2 else 1]:
        segment()
    concurrent = runs["concurrent"]
    got["rps"] = concurrent.requests / concurrent.wall_s
    got["p95_ms"] = concurrent.latency_s["p95"] * 1000
    got["client_cpu_pct"] = 100 * concurrent.client_cpu_share(os.cpu_count() or 1)
    got["p50_ms"] = runs["single"].latency_s["p50"] * 1000
    got["photo_ms"] = runs["photo"].latency_s["p50"] * 1000
    for name, (numerator, denominator) in RATIOS.items():
        got[name] = got[numerator] / got[denominator]
    got["ideal_ratio"] = got["rps"] * got["bare_ms"] / (1000 * len(bare.pinned))
    return got, runs


def print_round(index: int, got: dict[str, float]) -> None:
    print(
        f"round {index + 1:>2}: 8 clients {got['rps']:6.1f} req/s / bare {got['bare_rps']:6.1f}"
        f" images/s = {got['rate']:.3f}; 1 client p50 {got['p50_ms']:5.2f} / bare"
        f" {got['bare_ms']:5.2f} ms = {got['edge']:.3f}; photo p50 {got['photo_ms']:6.1f} ms"
        f" / 1 client = {got['photo']:.3f}"
    )


def measure(args: argparse.Namespace) -> Measured:
    """Start the server and the bare engines, run ``args.http_rounds`` rounds, print each."""
    workdir, env, hash_id = load.prepare("bench", "wrk")
    images = engine_cost.jpeg_files({"selfie": args.size, "photo": args.large})
    bodies = {name: seed_body(Path(path).read_bytes(), hash_id) for name, path in images.items()}
    url = f"http://127.0.0.1:{args.port}/liveness"
    rounds, errors = [], 0
    last: dict[str, load.Result] = {}

    def http(body: str, clients: int) -> load.Result:
        return load.load(url, bodies[body], args.duration, clients, workdir)

    bare = Bare(images, args.duration)
    try:
        with load.server(env, args.port) as (proc, startup_s):
            workers = len(load.worker_rss_mb(proc.pid))
            print(f"start-up to a live /status_check: {startup_s:.2f}s ({workers} workers)")
            errors += http("selfie", args.concurrency).failures  # warms the workers
            print(
                f"{args.http_rounds} interleaved rounds, {args.duration:g} s per segment, "
                f"{args.size} selfie ({len(bodies['selfie']) / 1e3:.0f} kB body), "
                f"{args.large} photo ({len(bodies['photo']) / 1e6:.1f} MB body):"
            )
            for index in range(args.http_rounds):
                got, last = one_round(index, bare, http, args.concurrency)
                errors += sum(result.failures for result in last.values())
                rounds.append(got)
                print_round(index, got)
            rss = load.worker_rss_mb(proc.pid)
    finally:
        bare.close()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(Path(images["selfie"]).parent, ignore_errors=True)
    return Measured(rounds, last, errors, startup_s, rss)


def report(measured: Measured, args: argparse.Namespace) -> None:
    """The last round's wrk runs in the seed's shape, then the ratios' medians and spread."""
    last = measured.last
    load.report(last["single"], f"last round: one client, {args.size} selfie")
    load.report(last["concurrent"], f"last round: {args.concurrency} clients, {args.size} selfie")
    load.report(last["photo"], f"last round: one client, {args.large} photo")
    print(f"\nworker RSS after the rounds: {[round(m) for m in measured.rss_mb]} MB")
    print(f"errors over every wrk run: {measured.errors}")
    print(f"\nmedian (min-max) over {len(measured.rounds)} interleaved rounds:")
    print(f"  HTTP {args.concurrency} clients / bare all cores, rate: {measured.spread('rate')}")
    print(f"  HTTP 1 client p50 / bare one engine ms: {measured.spread('edge')}")
    print(f"  phone photo / {args.size} p50, 1 client: {measured.spread('photo')}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """bench.load's options, with ``--duration`` as the seconds of one segment."""
    load.add_arguments(parser)
    parser.set_defaults(duration=2)
    parser.add_argument("--http-rounds", type=int, default=8, help="interleaved rounds")


def main(argv: list[str] | None = None) -> Measured:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    measured = measure(args)
    report(measured, args)
    return measured


if __name__ == "__main__":
    main()
