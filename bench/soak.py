"""Soak test: a bounded, rate-limited load for a fixed time, with worker memory sampled.

Starts gunicorn like `make serve` (own SQLite database, spare port, loopback only), measures
capacity with a short closed-loop burst unless ``--rate`` is given, then drives ``hey`` at
``--fraction`` of it (default 80%) for ``--duration`` seconds, sampling every worker's RSS.
Exits non-zero on any error or on memory growth past ``--max-growth``.

    python -m bench.soak [--duration 600] [--rate R] [--concurrency 4] [--size 640x480]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.images import parse_size, seed_body, selfie_jpeg
from bench.load import hey, load, prepare, server, worker_rss_mb

STATUS = re.compile(r"^\s*\[(\d+)\]\s+(\d+) responses", re.M)
ERRORS = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.M)
TOTAL = re.compile(r"^\s*Requests/sec:\s+([\d.]+)", re.M)


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


def parse_summary(text: str) -> dict[str, object]:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=600, help="seconds")
    parser.add_argument("--rate", type=float, default=None, help="req/s; default: measured")
    parser.add_argument("--fraction", type=float, default=0.8, help="of measured capacity")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--capacity-seconds", type=float, default=3)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--port", type=int, default=5092)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--max-growth", type=float, default=0.10)
    args = parser.parse_args(argv)
    work, env, hash_id = prepare("soak")
    body = seed_body(selfie_jpeg(*parse_size(args.size)), hash_id)
    (work / "body.json").write_bytes(body)
    url = f"http://127.0.0.1:{args.port}/liveness"
    log = work / "gunicorn.log"
    with server(env, args.port, log) as (proc, _):
        rate = args.rate
        if rate is None:
            capacity = measure_capacity(url, body, args.capacity_seconds, args.concurrency, work)
            rate = capacity * args.fraction
        print(f"soak: {rate:.2f} req/s for {args.duration} s, {args.concurrency} clients")
        with Sampler(proc.pid, args.sample_s) as sampler:
            summary = parse_summary(
                hey_for(url, work / "body.json", args.duration, args.concurrency, rate)
            )
        alive = proc.poll() is None
    ok = report(summary, args.duration) & memory_report(sampler.samples, args.max_growth)
    print(f"server alive at the end: {'yes' if alive else f'NO (exit {proc.returncode})'}")
    if ok and alive:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(0)
    print(f"kept {work} (gunicorn.log); its last lines:")
    print("\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    sys.exit(1)


def report(summary: dict[str, object], duration: int) -> bool:
    statuses: dict[int, int] = summary["statuses"]  # type: ignore[assignment]
    latency: dict[int, float] = summary["latency_s"]  # type: ignore[assignment]
    total = sum(statuses.values()) + int(summary["transport_errors"])  # type: ignore[call-overload]
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
