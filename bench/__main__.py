"""`make bench`: for each precision, the bare pipeline per stage on one core; HTTP load
against a local server with wrk taking turns with bare engines in interleaved rounds, for
the ratios of the two (bench.ratios); the engine's one-core cost against commit 14e976a's,
back to back (bench.engine_cost); then every target of issue 23 (ratios measured in this one
run, medians over its rounds) against what was measured.

    python -m bench [--size 640x480] [--large 4000x3000] [--concurrency 8] [--duration 2]
                    [--http-rounds 8] [--precisions f32,bf16] [--old ../wt-old] [--rounds 15]
                    [--port 5091]

``--duration``: seconds of each segment of a round (bench.ratios); ``--rounds``: the rounds of
bench.engine_cost.

f32 is the contract (its verdicts are the reference); the other precisions are measured in
the same run for comparison (docs, Performance). On a shared machine absolute figures move
by a third from one hour to the next: read the ratios.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

from bench import engine_cost, pipeline, ratios

# (name, wanted, how to read it off one precision's figures, whether it is met); issue 23
# (title, wanted, its figure read from figures()'s result, whether it meets it or None).
Target = tuple[str, str, Callable[[dict[str, float]], float], Callable[[float], bool] | None]
TARGETS: tuple[Target, ...] = (
    ("HTTP 8 clients / bare all cores (rate)", ">= 0.90", lambda f: f["ratio"], lambda v: v >= 0.9),
    ("errors, every HTTP run", "= 0", lambda f: f["errors"], lambda v: v == 0),
    ("HTTP 1 client p50 / bare 1-core ms", "<= 1.25", lambda f: f["edge"], lambda v: v <= 1.25),
    ("phone photo / 640x480, 1 client p50", "<= 4", lambda f: f["photo"], lambda v: v <= 4),
    ("engine CPU / 14e976a's, 1 core", "<= 0.70", lambda f: f["engine"], lambda v: v <= 0.7),
    ("worker RSS, largest MB", "<= 300", lambda f: f["rss_mb"], lambda v: v <= 300),
    ("start-up to live /status_check s", "<= 3", lambda f: f["startup_s"], lambda v: v <= 3),
    ("engine wall / 14e976a's, 1 core", "(figure)", lambda f: f["engine_wall"], None),
    ("bare photo / 640x480, engine CPU", "(figure)", lambda f: f["bare_photo"], None),
    ("HTTP / (cores x 1-core bare)", "(steadier)", lambda f: f["ideal_ratio"], None),
    ("8 clients: requests/s", "(figure)", lambda f: f["rps"], None),
    ("8 clients: p95 ms", "(figure)", lambda f: f["p95_ms"], None),
    ("1 client: p50 ms", "(figure)", lambda f: f["p50_ms"], None),
    ("phone photo, 1 client: p50 ms", "(figure)", lambda f: f["photo_ms"], None),
    ("bare pipeline, all cores: images/s", "(figure)", lambda f: f["bare_rps"], None),
    ("bare pipeline, 1 core: ms/image", "(figure)", lambda f: f["bare_ms"], None),
    ("wrk's CPU share, 8 clients %", "(small)", lambda f: f["client_cpu_pct"], None),
)


def figures(measured: ratios.Measured, costs: engine_cost.Costs | None) -> dict[str, float]:
    """The targets' figures: each a median over the interleaved rounds (a ratio: the median of
    the rounds' ratios), and engine_cost's."""
    keys = "rps p95_ms p50_ms photo_ms edge photo ideal_ratio bare_rps bare_ms client_cpu_pct"
    nan = float("nan")
    return {
        **{key: measured.median(key) for key in keys.split()},
        "ratio": measured.median("rate"),
        "errors": measured.errors,
        "engine": costs.ratio_cpu if costs else nan,
        "engine_wall": costs.ratio_wall if costs else nan,
        "bare_photo": costs.photo_ratio_cpu if costs else nan,
        "rss_mb": max(measured.rss_mb),
        "startup_s": measured.startup_s,
    }


def summary(found: dict[str, dict[str, float]]) -> None:
    names = list(found)
    print("\n## Targets (f32 is the contract; other precisions for comparison)\n")
    print("| target | wanted | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for title, wanted, read, ok in TARGETS:
        cells = []
        for name in names:
            value = read(found[name])
            text = f"{value:.2f}" if isinstance(value, float) else str(value)
            if isinstance(value, float) and math.isnan(value):
                text = "not measured"
            elif ok is not None:
                text += " ok" if ok(value) else " MISSED"
            cells.append(text)
        print(f"| {title} | {wanted} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    ratios.add_arguments(parser)
    parser.add_argument("--repeat", type=int, default=300, help="pipeline runs per size")
    parser.add_argument("--precisions", default="f32,bf16", help="ENGINE_PRECISION values")
    engine_cost.add_arguments(parser)
    parser.add_argument("--no-old", action="store_true", help="skip the engine against --old")
    args = parser.parse_args()
    old = None if args.no_old else engine_cost.old_tree(args.old, args.commit)
    load1, load5, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load1:.2f} (1 min) {load5:.2f} (5 min)")
    found: dict[str, dict[str, float]] = {}
    for precision in args.precisions.split(","):
        os.environ["ENGINE_PRECISION"] = precision  # the pipeline and the server read it
        print(f"\n# ENGINE_PRECISION={precision}\n")
        for size, repeat in ((args.size, args.repeat), (args.large, max(20, args.repeat // 10))):
            pipeline.main(["--size", size, "--repeat", str(repeat), "--parallel-seconds", "0"])
            print()
        measured = ratios.measure(args)
        ratios.report(measured, args)
        costs = None
        if old is not None:
            print()
            costs = engine_cost.measure(old, args.rounds, args.per_round, args.size, args.large)
        found[precision] = figures(measured, costs)
    summary(found)


if __name__ == "__main__":
    main()
