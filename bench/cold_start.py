"""Cold starts of a real gunicorn whose workers all compile into an empty (or partly emptied)
OpenVINO cache at once: how many starts come up with every worker live.

    python -m bench.cold_start [--starts 3] [--workers 4] [--partial]

Each start copies the installed models (``MODEL_DIR``, without its cache) to a scratch
directory, so the workers race on a cache of their own; ``--partial`` first fills the cache
with one start, then removes every cache file but the oldest before each measured start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from bench.gunicorn import free_port, http_workers, manage, start_gunicorn
from ml.install import default_model_dir


def _env(work: Path, models: Path, workers: int) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": str(workers),
        "MODEL_DIR": str(models),
        "LOG_FORMAT": "plain",
    }
    return env


def start_once(work: Path, models: Path, workers: int, timeout: float = 180) -> tuple[str, float]:
    """("live", seconds) when every worker answered /status_check 200, else ("exit N", s)."""
    env = _env(work, models, workers)
    base = f"http://127.0.0.1:{env['PORT']}"
    log = work / f"gunicorn-{env['PORT']}.log"
    began = time.monotonic()
    with log.open("wb") as out:
        process = start_gunicorn(env, out)
    outcome = "timeout"
    try:
        while time.monotonic() - began < timeout:
            if process.poll() is not None:
                outcome = f"exit {process.returncode}"
                break
            try:
                ok = requests.get(f"{base}/status_check", timeout=2).status_code == 200
            except requests.RequestException:
                ok = False
            if ok and len(http_workers(process.pid)) == workers and _all_warm(log, workers):
                outcome = "live"
                break
            time.sleep(0.1)
    finally:
        elapsed = time.monotonic() - began
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if outcome != "live":
        lines = log.read_text(errors="replace").splitlines()
        print("\n".join(line for line in lines if "status_check" not in line)[-3000:])
    return outcome, elapsed


def _all_warm(log: Path, workers: int) -> bool:
    return log.read_text(errors="replace").count("liveness engine warmed") >= workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--partial", action="store_true", help="all cache files but the oldest")
    args = parser.parse_args()
    installed = default_model_dir()
    results = []
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        work = Path(scratch)
        manage({**os.environ, "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}"}, "migrate", "-v0")
        for n in range(args.starts):
            models = work / f"models-{n}"
            shutil.copytree(installed, models, ignore=shutil.ignore_patterns("cache"))
            if args.partial:
                filled, _ = start_once(work, models, 1)
                blobs = sorted((models / "cache").rglob("*.blob"), key=lambda p: p.stat().st_mtime)
                for blob in blobs[1:]:
                    blob.unlink()
                print(f"cache filled ({filled}), {len(blobs)} files, kept {blobs[0].name}")
            outcome, seconds = start_once(work, models, args.workers)
            results.append(outcome)
            print(f"start {n + 1}: {args.workers} workers -> {outcome} in {seconds:.1f} s")
    live = results.count("live")
    print(f"{live} of {len(results)} cold starts live with {args.workers} workers each")


if __name__ == "__main__":
    main()
