"""HTTP load test against a locally started server, reported in the seed's own shape.

Starts gunicorn through the same config as `make serve` on a spare port with its own SQLite
database, creates a tenant, and drives it with `hey` (Debian's HTTP load generator) posting
the seed's request body. Loopback only; bounded by the request count.

    python -m bench.load [--size 640x480] [--large 4000x3000] [--concurrency 8] [--requests 501]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.gunicorn import start_gunicorn
from bench.images import REPO, parse_size, seed_body, selfie_jpeg

# hey's CSV columns: response-time, DNS+dialup, DNS, Request-write, Response-delay,
# Response-read, status-code, offset. The phases named as in the seed's report.
PHASES = (
    ("Connecting", 1),
    ("Request Sending", 3),
    ("Request Waiting", 4),
    ("Request Receiving", 5),
)


@dataclass
class Result:
    durations_s: list[float]
    statuses: list[int]
    wall_s: float
    body_bytes: int
    response_bytes: int
    phases_s: dict[str, list[float]]

    @property
    def successes(self) -> int:
        return sum(s == 201 for s in self.statuses)


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def wait_live(url: str, timeout_s: float = 60) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        try:
            with urllib.request.urlopen(url + "/status_check", timeout=1) as reply:
                if reply.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not become live in {timeout_s} s")


@contextmanager
def server(
    env: dict[str, str], port: int, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen, float]]:
    """A gunicorn started like `make serve`; yields it and its time to a live status_check.
    Its output goes to ``log`` when given."""
    started = time.perf_counter()
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = start_gunicorn({**env, "PORT": str(port)}, out)
    try:
        wait_live(f"http://127.0.0.1:{port}")
        yield proc, time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if log:
            out.close()  # type: ignore[union-attr]


def worker_rss_mb(master_pid: int) -> list[float]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        sizes.append(int(kb) / 1024)
    return sizes


def hey(url: str, body: Path, concurrency: int, *options: str) -> str:
    """Run `hey` posting ``body`` as JSON from ``concurrency`` clients; its standard output."""
    command = ["hey", *options, "-c", str(concurrency), "-m", "POST", "-T", "application/json"]
    command += ["-D", str(body), "-t", "60", url]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def run_hey(url: str, body: Path, requests: int, concurrency: int) -> tuple[list[list[str]], float]:
    start = time.perf_counter()
    output = hey(url, body, concurrency, "-n", str(requests), "-o", "csv")
    rows = list(csv.reader(io.StringIO(output)))
    return rows[1:], time.perf_counter() - start


def one_response_size(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return len(reply.read()) + sum(len(k) + len(v) + 4 for k, v in reply.headers.items())


def load(url: str, body: bytes, requests: int, concurrency: int, workdir: Path) -> Result:
    path = workdir / "body.json"
    path.write_bytes(body)
    # hey gives each client requests // concurrency: round up so that none is dropped.
    requests = -(-requests // concurrency) * concurrency
    rows, wall = run_hey(url, path, requests, concurrency)
    return Result(
        [float(r[0]) for r in rows],
        [int(r[6]) for r in rows],
        wall,
        len(body),
        one_response_size(url, body),
        {name: [float(r[column]) for r in rows] for name, column in PHASES},
    )


def pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fmt_s(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs"
    return f"{seconds * 1000:.2f}ms" if seconds < 1 else f"{seconds:.2f}s"


def report(result: Result, title: str) -> float:
    n, ok = len(result.statuses), result.successes
    ordered = sorted(result.durations_s)
    rps = n / result.wall_s
    print(f"\n### {title}\n\n| Metric | Value |\n|---|---|")
    for name, value in [
        ("Total Requests Made", n),
        ("Total Success", ok),
        ("Total Failures", n - ok),
        ("Success Rate", f"{100 * ok / n:.2f}%"),
        ("Error Rate", f"{100 * (n - ok) / n:.2f}%"),
        ("Total Data Received", f"{n * result.response_bytes / 1e3:.0f} kB"),
        ("Total Data Sent", f"{n * result.body_bytes / 1e6:.1f} MB"),
        ("Total Duration", f"{result.wall_s:.2f}s"),
        ("Requests per Minute", f"{rps * 60:.0f} req/min"),
        ("Average Requests per Second", f"{rps:.2f} req/sec"),
    ]:
        print(f"| {name} | {value} |")
    print("\n| Request Duration | Value |\n|---|---|")
    for name, value in [
        ("Average Duration", statistics.fmean(ordered)),
        ("Minimum Duration", ordered[0]),
        ("Median Duration", statistics.median(ordered)),
        ("Maximum Duration", ordered[-1]),
        ("90th Percentile", pct(ordered, 90)),
        ("95th Percentile", pct(ordered, 95)),
    ]:
        print(f"| {name} | {fmt_s(value)} |")
    print("\n| Request Breakdown | Avg | Min | Median | Max |\n|---|---|---|---|---|")
    for name, values in result.phases_s.items():
        cells = (statistics.fmean(values), min(values), statistics.median(values), max(values))
        print(f"| {name} | {' | '.join(fmt_s(v) for v in cells)} |")
    statuses = {s: result.statuses.count(s) for s in sorted(set(result.statuses))}
    print(f"\nstatus codes: {statuses}")
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
    parser.add_argument("--requests", type=int, default=501)
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


def run(args: argparse.Namespace) -> float:
    """Start a server, run the single-client, concurrent and large-photo loads; returns req/s
    of the concurrent run."""
    workdir, env, hash_id = prepare("bench")
    body = seed_body(selfie_jpeg(*parse_size(args.size)), hash_id)
    large = seed_body(selfie_jpeg(*parse_size(args.large)), hash_id)
    url = f"http://127.0.0.1:{args.port}/liveness"
    try:
        with server(env, args.port) as (proc, startup_s):
            workers = len(worker_rss_mb(proc.pid))
            print(f"\nstart-up to a live /status_check: {startup_s:.2f}s ({workers} workers)")
            single = load(url, body, min(args.requests, 200), 1, workdir)
            report(single, f"one client, {args.size} selfie ({len(body) / 1e3:.0f} kB body)")
            result = load(url, body, args.requests, args.concurrency, workdir)
            rps = report(result, f"{args.concurrency} concurrent clients, {args.size} selfie")
            photo = load(url, large, 30, 1, workdir)
            report(photo, f"one client, {args.large} photo ({len(large) / 1e6:.1f} MB body)")
            rss = [round(m) for m in worker_rss_mb(proc.pid)]
            print(f"\nworker RSS after the runs: {rss} MB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
