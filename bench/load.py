"""HTTP load test against a locally started server, reported in the seed's own shape.

Starts gunicorn through the same config as `make serve` on a spare port with its own SQLite
database, creates a tenant, and drives it with `wrk` (Debian's; bench/wrk.lua posts the seed's
request body and counts status codes) for a fixed time. Loopback only. wrk is event-driven
and costs the server little: its own CPU share is printed with each run (`hey` took about half
of 2 cores and halved the figure it reported).

    python -m bench.load [--size 640x480] [--large 4000x3000] [--concurrency 8] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from bench.gunicorn import http_workers, manage, running
from bench.images import parse_size, seed_body, selfie_jpeg

WRK_SCRIPT = Path(__file__).with_name("wrk.lua")


@dataclass
class Result:
    """One wrk run: counts, wall time, latency percentiles (seconds) and the client's CPU."""

    statuses: dict[int, int]  # status code -> responses
    wall_s: float
    body_bytes: int
    received_bytes: int
    latency_s: dict[str, float]  # min, mean, max, p50, p90, p95, p99
    socket_errors: dict[str, int]  # wrk's connect/read/write/timeout counts
    client_cpu_s: float  # wrk's user + system CPU time over the run

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def successes(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def failures(self) -> int:
        transport = sum(v for k, v in self.socket_errors.items() if k != "status")
        return self.requests - self.successes + transport

    def client_cpu_share(self, cores: int) -> float:
        """The client's share of the machine's CPU time over the run."""
        return self.client_cpu_s / (self.wall_s * cores)


class WrkFigures(TypedDict):
    """What bench/wrk.lua's done() prints (JSON keys are strings: the statuses' too)."""

    requests: int
    duration_us: int
    bytes: int
    errors: dict[str, int]  # connect, read, write, status, timeout
    latency_us: dict[str, float]  # min, mean, max, p50, p90, p95, p99
    statuses: dict[str, int]


def parse_wrk(output: str) -> WrkFigures:
    """The JSON line bench/wrk.lua's done() prints."""
    for line in output.splitlines():
        if line.startswith("WRK_JSON "):
            figures: WrkFigures = json.loads(line.removeprefix("WRK_JSON "))
            return figures
    raise ValueError(f"no WRK_JSON line in wrk's output:\n{output[-2000:]}")


def result_of(figures: WrkFigures, body_bytes: int, client_cpu_s: float) -> Result:
    latency = {k: v / 1e6 for k, v in figures["latency_us"].items()}
    return Result(
        statuses={int(k): v for k, v in figures["statuses"].items()},
        wall_s=figures["duration_us"] / 1e6,
        body_bytes=body_bytes,
        received_bytes=figures["bytes"],
        latency_s=latency,
        socket_errors=figures["errors"],
        client_cpu_s=client_cpu_s,
    )


@contextmanager
def server(
    env: dict[str, str], port: int, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """A gunicorn started like `make serve`; yields it and its time to a live status_check.
    Its output goes to ``log`` when given."""
    with ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log else subprocess.DEVNULL
        yield stack.enter_context(running({**env, "PORT": str(port)}, out, timeout=60))


def worker_rss_mb(master_pid: int) -> list[float]:
    """The HTTP workers' RSS (the task worker's is not the request path's)."""
    sizes = []
    for pid in http_workers(master_pid):
        status = Path(f"/proc/{pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        sizes.append(int(kb) / 1024)
    return sizes


def hey(url: str, body: Path, concurrency: int, *options: str) -> str:
    """Run `hey` posting ``body`` as JSON from ``concurrency`` clients (bench.soak's rate-
    limited load); its standard output."""
    command = ["hey", *options, "-c", str(concurrency), "-m", "POST", "-T", "application/json"]
    command += ["-D", str(body), "-t", "60", url]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def wrk(url: str, body: Path, seconds: float, concurrency: int) -> tuple[str, float]:
    """Run wrk (one thread: it is event-driven, one thread keeps 8 connections busy at a
    fraction of a core) for ``seconds``; its output and its own CPU seconds."""
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "60s"]
    command += ["-s", str(WRK_SCRIPT), url, "--", str(body)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return output, cpu


def load(url: str, body: bytes, seconds: float, concurrency: int, workdir: Path) -> Result:
    path = workdir / "body.json"
    path.write_bytes(body)
    output, cpu = wrk(url, path, seconds, concurrency)
    return result_of(parse_wrk(output), len(body), cpu)


def pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fmt_s(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs"
    return f"{seconds * 1000:.2f}ms" if seconds < 1 else f"{seconds:.2f}s"


def report(result: Result, title: str, cores: int | None = None) -> float:
    """The seed's report shape; returns requests per second."""
    cores = cores or os.cpu_count() or 1
    n, ok = result.requests, result.successes
    rps = n / result.wall_s
    print(f"\n### {title}\n\n| Metric | Value |\n|---|---|")
    for name, value in [
        ("Total Requests Made", n),
        ("Total Success", ok),
        ("Total Failures", result.failures),
        ("Success Rate", f"{100 * ok / max(n, 1):.2f}%"),
        ("Error Rate", f"{100 * result.failures / max(n, 1):.2f}%"),
        ("Total Data Received", f"{result.received_bytes / 1e3:.0f} kB"),
        ("Total Data Sent", f"{n * result.body_bytes / 1e6:.1f} MB"),
        ("Total Duration", f"{result.wall_s:.2f}s"),
        ("Requests per Minute", f"{rps * 60:.0f} req/min"),
        ("Average Requests per Second", f"{rps:.2f} req/sec"),
    ]:
        print(f"| {name} | {value} |")
    print("\n| Request Duration | Value |\n|---|---|")
    latency = result.latency_s
    for name, key in [
        ("Average Duration", "mean"),
        ("Minimum Duration", "min"),
        ("Median Duration", "p50"),
        ("Maximum Duration", "max"),
        ("90th Percentile", "p90"),
        ("95th Percentile", "p95"),
        ("99th Percentile", "p99"),
    ]:
        print(f"| {name} | {fmt_s(latency[key])} |")
    print(
        f"\nstatus codes: {dict(sorted(result.statuses.items()))}; socket errors: "
        f"{result.socket_errors}; client (wrk) CPU: {result.client_cpu_s:.2f} s = "
        f"{100 * result.client_cpu_share(cores):.1f}% of {cores} cores over the run"
    )
    return rps


def bench_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    env["LOG_LEVEL"] = "warning"
    return env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", default="640x480", help="selfie JPEG size WxH")
    parser.add_argument("--large", default="4000x3000", help="phone photo size WxH")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--port", type=int, default=5091)


def prepare(name: str, tool: str = "hey") -> tuple[Path, dict[str, str], str]:
    """A work directory, the server's environment (its own SQLite file) and a new tenant's
    hash_id; exits when the load generator ``tool`` is missing."""
    if shutil.which(tool) is None:
        sys.exit(f"bench.{name} needs `{tool}` (apt-get install {tool})")
    workdir = Path(tempfile.mkdtemp(prefix=f"facia-{name}-"))
    env = bench_env(workdir)
    manage(env, "migrate", "--noinput", "-v", "0")
    hash_id = manage(env, "create_tenant", f"{name}-{int(time.time())}").strip().splitlines()[-1]
    return workdir, env, hash_id


@dataclass
class Runs:
    """What `make bench` compares with the targets."""

    single: Result
    concurrent: Result
    photo: Result
    startup_s: float
    rss_mb: list[float]


def run(args: argparse.Namespace) -> Runs:
    """Start a server, run the single-client, concurrent and large-photo loads."""
    workdir, env, hash_id = prepare("bench", "wrk")
    body = seed_body(selfie_jpeg(*parse_size(args.size)), hash_id)
    large = seed_body(selfie_jpeg(*parse_size(args.large)), hash_id)
    url = f"http://127.0.0.1:{args.port}/liveness"
    try:
        with server(env, args.port) as (proc, startup_s):
            workers = len(worker_rss_mb(proc.pid))
            print(f"\nstart-up to a live /status_check: {startup_s:.2f}s ({workers} workers)")
            single = load(url, body, args.duration / 2, 1, workdir)
            report(single, f"one client, {args.size} selfie ({len(body) / 1e3:.0f} kB body)")
            result = load(url, body, args.duration, args.concurrency, workdir)
            report(result, f"{args.concurrency} concurrent clients, {args.size} selfie")
            photo = load(url, large, args.duration / 2, 1, workdir)
            report(photo, f"one client, {args.large} photo ({len(large) / 1e6:.1f} MB body)")
            rss = worker_rss_mb(proc.pid)
            print(f"\nworker RSS after the runs: {[round(m) for m in rss]} MB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Runs(single, result, photo, startup_s, rss)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
