"""Soak test: a bounded, rate-limited load for a fixed time, with worker memory sampled.

Starts gunicorn like `make serve` (own SQLite database, spare port, loopback only) and
samples every worker's RSS while it is loaded for ``--duration`` seconds; prints each
worker's growth in MB/min after ``--warmup`` (least-squares slope).

- ``--mode live`` (default): live selfies only, with ``hey``, at ``--fraction`` (80%) of the
  capacity measured by a short closed-loop burst, or at ``--rate``.
- ``--mode mixed``: 70% live selfies, 10% no-face images, 10% corrupt images, 10% wrong
  hash_id, in a fixed rotation, at ``--rate`` (default 25 req/s), with ``wrk`` and
  bench/mixed.lua (``hey`` sends one body only).

Exits non-zero on an unexpected status or transport error, a worker that died, a slope over
``--max-slope`` for any worker, or (live mode) growth past ``--max-growth``.

    python -m bench.soak [--mode mixed|sessions] [--duration 600] [--rate R] [--max-slope 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from bench import soak_sessions
from bench.gunicorn import manage
from bench.images import REPO, corrupt_jpeg, no_face_jpeg, parse_size, seed_body, selfie_jpeg
from bench.load import hey, load, prepare, server, worker_rss_mb

STATUS = re.compile(r"^\s*\[(\d+)\]\s+(\d+) responses", re.M)
ERRORS = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.M)
TOTAL = re.compile(r"^\s*Requests/sec:\s+([\d.]+)", re.M)
MIXED_LUA = REPO / "bench" / "mixed.lua"
# The mixed rotation (10 slots): kind of body -> slots, and the status each must get.
MIX = {"live": 7, "no_face": 1, "corrupt": 1, "wrong_hash_id": 1}
EXPECTED = {"live": 201, "no_face": 422, "corrupt": 400, "wrong_hash_id": 401}


@dataclass
class Sampler:
    """Sums of worker RSS (MB) every ``every_s`` seconds, on a background thread."""

    master_pid: int
    every_s: float
    samples: list[tuple[float, list[float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        start = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - start, worker_rss_mb(self.master_pid)))
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((self.samples[-1][0], worker_rss_mb(self.master_pid)))


def hey_for(url: str, body: Path, seconds: int, concurrency: int, rate: float) -> str:
    per_worker = rate / concurrency
    return hey(url, body, concurrency, "-z", f"{seconds}s", "-q", f"{per_worker:.3f}")


class HeySummary(TypedDict):
    """What report() reads of hey's summary."""

    statuses: dict[int, int]
    transport_errors: int
    latency_s: dict[int, float]  # percentile -> seconds
    rps: float


def parse_summary(text: str) -> HeySummary:
    statuses = {int(code): int(n) for code, n in STATUS.findall(text)}
    errors_part = text.split("Error distribution:", 1)[1] if "Error distribution:" in text else ""
    errors = sum(int(n) for n, _ in ERRORS.findall(errors_part))
    if errors:
        print("hey errors:\n" + errors_part.strip()[:2000])
    latency = {int(p): float(s) for p, s in re.findall(r"(\d+)% in ([\d.]+) secs", text)}
    rps = TOTAL.search(text)
    return {
        "statuses": statuses,
        "transport_errors": errors,
        "latency_s": latency,
        "rps": float(rps.group(1)) if rps else 0.0,
    }


def memory_report(samples: list[tuple[float, list[float]]], max_growth: float) -> bool:
    counts = {len(sizes) for _, sizes in samples}
    if len(counts) > 1:
        print(f"worker count changed during the soak: {sorted(counts)} (a worker died)")
        samples = [s for s in samples if len(s[1]) == len(samples[0][1])]
    totals = [sum(sizes) for _, sizes in samples]
    first, last, peak = totals[0], totals[-1], max(totals)
    print(
        f"worker RSS (sum of {len(samples[0][1])} workers, {len(samples)} samples): "
        f"first {first:.0f} MB, last {last:.0f} MB, max {peak:.0f} MB; "
        f"per worker first {[round(m) for m in samples[0][1]]}, "
        f"last {[round(m) for m in samples[-1][1]]}"
    )
    flat = last <= first * (1 + max_growth) and len(counts) == 1
    print(f"memory flat (last <= first + {max_growth:.0%}): {'yes' if flat else 'NO'}")
    return flat


def measure_capacity(url: str, body: bytes, seconds: float, concurrency: int, work: Path) -> float:
    result = load(url, body, seconds, concurrency, work)  # wrk, closed loop
    capacity = result.requests / result.wall_s
    print(
        f"capacity: {capacity:.2f} req/s ({result.requests} requests in {seconds} s, "
        f"{concurrency} clients, statuses {sorted(result.statuses)})"
    )
    return capacity


def slopes_mb_per_min(samples: list[tuple[float, list[float]]], warmup_s: float) -> list[float]:
    """Each worker's RSS growth after ``warmup_s``: least-squares slope, MB per minute."""
    kept = [(t, sizes) for t, sizes in samples if t >= warmup_s]
    if len(kept) < 3:
        return []
    times = [t / 60 for t, _ in kept]
    return [
        statistics.linear_regression(times, [sizes[i] for _, sizes in kept]).slope
        for i in range(len(kept[0][1]))
    ]


def slope_report(samples: list[tuple[float, list[float]]], warmup_s: float, limit: float) -> bool:
    counts = {len(sizes) for _, sizes in samples}
    if len(counts) > 1:
        print(f"worker count changed during the soak: {sorted(counts)} (a worker died)")
        return False
    slopes = slopes_mb_per_min(samples, warmup_s)
    if not slopes:
        print(f"too few samples after the {warmup_s:.0f} s warm-up for a slope")
        return False
    flat = max(slopes) <= limit
    kept = [sizes for t, sizes in samples if t >= warmup_s]
    print(
        f"worker RSS at {warmup_s:.0f} s {[round(m) for m in kept[0]]} MB, "
        f"at the end {[round(m) for m in kept[-1]]} MB"
    )
    print(
        f"RSS slope per worker after {warmup_s:.0f} s warm-up (least squares, MB/min): "
        f"{[round(v, 2) for v in slopes]}; limit {limit}: {'ok' if flat else 'EXCEEDED'}"
    )
    return flat


def mixed_bodies(work: Path, hash_id: str, size: str) -> list[Path]:
    """The rotation's bodies as files, in MIX order (live slots spread out)."""
    live = selfie_jpeg(*parse_size(size))
    bodies = {
        "live": seed_body(live, hash_id),
        "no_face": seed_body(no_face_jpeg(*parse_size(size)), hash_id),
        "corrupt": seed_body(corrupt_jpeg(live), hash_id),
        "wrong_hash_id": seed_body(live, "not-a-hash-id"),
    }
    order = ["live", "live", "no_face", "live", "live", "corrupt"]
    order += ["live", "live", "wrong_hash_id", "live"]
    assert all(order.count(kind) == n for kind, n in MIX.items())
    paths = []
    for kind in order:
        path = work / f"{kind}.json"
        path.write_bytes(bodies[kind])
        paths.append(path)
    return paths


def wrk_mixed(url: str, bodies: list[Path], seconds: int, concurrency: int, rate: float) -> str:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "60s"]
    command += ["-s", str(MIXED_LUA), url, "--", f"{rate:.3f}", *map(str, bodies)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def mixed_report(output: str, duration: int, rate: float) -> bool:
    line = next(x for x in output.splitlines() if x.startswith("MIXED "))
    result = json.loads(line.removeprefix("MIXED "))
    statuses = {int(code): n for code, n in sorted(result["statuses"].items())}
    total = sum(statuses.values())
    expected = {EXPECTED[kind]: round(total * n / 10) for kind, n in MIX.items()}
    unexpected = {code: n for code, n in statuses.items() if code not in expected}
    print(
        f"requests {total} in {duration} s ({total / duration:.2f} req/s achieved, "
        f"{rate:.2f} asked), statuses {statuses} (expected about {expected}), "
        f"transport errors {result['transport_errors']}, "
        f"latency p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms"
    )
    return not unexpected and result["transport_errors"] == 0


def run_load(args: argparse.Namespace, work: Path, hash_id: str, url: str) -> bool:
    """The load itself, under a Sampler; True when every answer was as expected."""
    if args.mode == "mixed":
        bodies = mixed_bodies(work, hash_id, args.size)
        rate = args.rate or 25.0
        print(f"soak (mixed): {rate:.2f} req/s for {args.duration} s, {args.concurrency} conns")
        with Sampler(args.master_pid, args.sample_s) as sampler:
            output = wrk_mixed(url, bodies, args.duration, args.concurrency, rate)
        args.samples = sampler.samples
        return mixed_report(output, args.duration, rate)
    body = seed_body(selfie_jpeg(*parse_size(args.size)), hash_id)
    (work / "body.json").write_bytes(body)
    rate = args.rate
    if rate is None:
        capacity = measure_capacity(url, body, args.capacity_seconds, args.concurrency, work)
        rate = capacity * args.fraction
    print(f"soak: {rate:.2f} req/s for {args.duration} s, {args.concurrency} clients")
    with Sampler(args.master_pid, args.sample_s) as sampler:
        summary = parse_summary(
            hey_for(url, work / "body.json", args.duration, args.concurrency, rate)
        )
    args.samples = sampler.samples
    return report(summary, args.duration) & memory_report(sampler.samples, args.max_growth)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("live", "mixed", "sessions"), default="live")
    parser.add_argument("--duration", type=int, default=600, help="seconds")
    parser.add_argument(
        "--rate", type=float, default=None, help="req/s; default: measured (live), 25 (mixed)"
    )
    parser.add_argument("--fraction", type=float, default=0.8, help="of measured capacity")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--capacity-seconds", type=float, default=3)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--port", type=int, default=5092)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--max-growth", type=float, default=0.10, help="live mode, last/first")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the slope")
    parser.add_argument("--max-slope", type=float, default=1.0, help="MB/min per worker")
    parser.add_argument("--walks-per-s", type=float, default=2.0, help="sessions mode")
    parser.add_argument("--walkers", type=int, default=2, help="sessions mode: client threads")
    parser.add_argument("--prune-every", type=float, default=60.0, help="sessions mode, seconds")
    parser.add_argument(
        "--tenant-rate-limit", type=int, default=None, help="sessions mode: per minute (none)"
    )
    return parser.parse_args(argv)


def run_sessions(args: argparse.Namespace, env: dict[str, str]) -> bool:
    """The sessions mode's loop and report (bench/soak_sessions.py), under its own sampling."""
    tenants = {
        kind: manage(env, "create_tenant", f"soak-{kind}-{time.time_ns()}", *extra)
        .strip()
        .splitlines()[-1]
        for kind, extra in sessions_tenants(args).items()
    }
    base = f"http://127.0.0.1:{args.port}"
    print(
        f"soak (sessions): {args.walks_per_s:.2f} walks/s for {args.duration} s, "
        f"{args.walkers} client threads, prune_sessions every {args.prune_every:.0f} s"
    )
    cpu = time.process_time()
    tally, samples = soak_sessions.drive(args, env, base, tenants)
    cpu = time.process_time() - cpu
    args.samples = samples.rss
    cores = os.cpu_count() or 1
    answered = soak_sessions.report(tally, samples, args.duration, cpu, cores)
    return answered & soak_sessions.plateau(samples)


def sessions_tenants(args: argparse.Namespace) -> dict[str, list[str]]:
    limit = [] if args.tenant_rate_limit is None else ["--rate-limit", str(args.tenant_rate_limit)]
    return {"passive": limit, "head_turn": [*limit, "--challenge", "head_turn"]}


def server_env(args: argparse.Namespace, env: dict[str, str]) -> None:
    if args.mode in ("mixed", "sessions"):
        # A wrong hash_id 2.5 times a second from one IP (bad tokens in sessions mode): the
        # failure throttle would block that IP, and every later request would be a 429.
        env["AUTH_FAILURE_LIMIT"] = str(10**9)
    if args.mode == "sessions":
        env["SESSION_TTL_S"] = str(soak_sessions.TTL_S)  # expired tokens within the run
        if not env["DATABASE_URL"].startswith("sqlite:///"):
            sys.exit("--mode sessions counts the session table's rows in its own SQLite file")
        args.database = Path(env["DATABASE_URL"].removeprefix("sqlite:///"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tools = {"live": "hey", "mixed": "wrk", "sessions": sys.executable}
    work, env, hash_id = prepare("soak", tools[args.mode])
    server_env(args, env)
    url = f"http://127.0.0.1:{args.port}/liveness"
    log = work / "gunicorn.log"
    with server(env, args.port, log) as (proc, _):
        args.master_pid = proc.pid
        if args.mode == "sessions":
            answered = run_sessions(args, env)
        else:
            answered = run_load(args, work, hash_id, url)
        alive = proc.poll() is None
    ok = answered & slope_report(args.samples, args.warmup, args.max_slope)
    print(f"server alive at the end: {'yes' if alive else f'NO (exit {proc.returncode})'}")
    if ok and alive:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(0)
    print(f"kept {work} (gunicorn.log); its last lines:")
    print("\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    sys.exit(1)


def report(summary: HeySummary, duration: int) -> bool:
    statuses, latency = summary["statuses"], summary["latency_s"]
    total = sum(statuses.values()) + summary["transport_errors"]
    errors = total - statuses.get(201, 0)
    print(
        f"requests {total} in {duration} s ({summary['rps']:.2f} req/s achieved), "
        f"statuses {statuses}, transport errors {summary['transport_errors']}, errors {errors}"
    )
    print(
        "latency: "
        + ", ".join(f"p{p} {latency[p] * 1000:.0f} ms" for p in sorted(latency) if p >= 50)
    )
    return errors == 0


if __name__ == "__main__":
    main()
