"""The multiprocess metrics directory (PROMETHEUS_MULTIPROC_DIR) across gunicorn's lifecycle on
the real server: SIGUSR2 (a second master and its workers beside the first, then one of the two
stopped), and workers replaced (SIGKILL, SIGHUP, max_requests)."""

import os
import signal
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.gunicorn import http_workers
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.processes import STARTUP_S, until
from tests.system.test_stop_signals import alive, started_master

pytestmark = pytest.mark.system


def scrape(server: Gunicorn) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(f"{server.base}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def verdicts(server: Gunicorn, tenant: str) -> float:
    return sum(
        value
        for name, labels, value in scrape(server)
        if name == "facia_liveness_verdicts_total" and labels["tenant"] == tenant
    )


def ready_pids(server: Gunicorn) -> dict[int, float]:
    """facia_worker_ready's samples: worker pid to value."""
    samples = scrape(server)
    return {int(ls["pid"]): v for name, ls, v in samples if name == "facia_worker_ready"}


def served(server: Gunicorn, body: bytes, tag: str, count: int) -> None:
    assert [post(server.base, body, f"{tag}-{n}").status for n in range(count)] == [201] * count


def upgrade(server: Gunicorn) -> int:
    """SIGUSR2, until the new master's worker is ready (its readiness sample, 1, in a scrape):
    the new master's pid."""
    old = server.process.pid
    server.process.send_signal(signal.SIGUSR2)
    until(lambda: started_master(server.log, old) != 0, timeout=120, every=0.05)
    new = started_master(server.log, old)

    def new_worker_ready() -> bool:
        workers = http_workers(new)
        return len(workers) == 1 and ready_pids(server).get(workers[0]) == 1

    until(new_worker_ready, timeout=STARTUP_S, every=0.1)
    return new


def stop_master(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    until(lambda: not alive(pid), timeout=120, every=0.05)


def temporary_dirs(work: Path) -> list[Path]:
    """The metrics directories the server made itself (TMPDIR is ``work``/tmp)."""
    return sorted((work / "tmp").glob("facia-metrics-*"))


@pytest.mark.parametrize("operator_dir", [True, False], ids=["operator-dir", "temporary-dir"])
def test_sigusr2_upgrade_keeps_every_count(tmp_path: Path, operator_dir: bool) -> None:
    """SIGUSR2, both generations serving on one socket, then the old master stopped as an
    operator does: every scrape, whichever generation's worker answers it, counts every
    verdict. A new master emptying an operator's directory under the old workers would scrape
    3 verdicts as 0, and one making a temporary directory of its own where none is set, 3 as 0
    by its workers, as 3 by the old ones: a counter going down and up again between scrapes."""
    metrics = tmp_path / "metrics"
    extra = {"PROMETHEUS_MULTIPROC_DIR": str(metrics)} if operator_dir else {}
    with gunicorn(tmp_path, 1, **extra) as server:
        body = selfie_body(create_tenant(server.env, "upgraded"))
        served(server, body, "old", 3)
        new = upgrade(server)
        try:
            # Several scrapes: each is answered by either generation's worker.
            assert [verdicts(server, "upgraded") for _ in range(8)] == [3] * 8
            served(server, body, "both", 2)
            assert server.stop() == 0
            assert verdicts(server, "upgraded") == 5
            assert set(ready_pids(server)) == set(http_workers(new))
            served(server, body, "new", 1)
            assert verdicts(server, "upgraded") == 6
        finally:
            stop_master(new)
    if operator_dir:
        assert metrics.is_dir()
    else:
        assert temporary_dirs(tmp_path) == []  # removed by the last master, not before


def test_sigusr2_rolled_back_keeps_the_old_masters_directory(tmp_path: Path) -> None:
    """SIGUSR2, then the new master stopped (an upgrade rolled back): the old master serves on
    with its temporary directory and every count in it; the last master out removes it."""
    with gunicorn(tmp_path, 1) as server:
        body = selfie_body(create_tenant(server.env, "rolled-back"))
        served(server, body, "old", 2)
        stop_master(upgrade(server))
        assert len(temporary_dirs(tmp_path)) == 1
        served(server, body, "after", 1)
        assert verdicts(server, "rolled-back") == 3
        assert set(ready_pids(server)) == set(server.workers())
    assert temporary_dirs(tmp_path) == []


def test_replaced_workers_leave_no_readiness_sample(tmp_path: Path) -> None:
    """facia_worker_ready has one sample per live worker after a worker is killed (SIGKILL, as
    the OOM killer does) and after a reload (SIGHUP): the master's child_exit drops a dead
    worker's; counts survive both (a dead worker's counter file stays)."""
    with gunicorn(tmp_path, 2) as server:
        body = selfie_body(create_tenant(server.env, "replaced"))
        served(server, body, "first", 2)
        server.kill_worker(server.workers()[0])
        assert set(ready_pids(server)) == set(server.workers())
        before = set(server.workers())
        server.process.send_signal(signal.SIGHUP)
        until(lambda: not before & set(server.workers()), timeout=STARTUP_S, every=0.05)
        server.wait_workers(2)
        assert set(ready_pids(server)) == set(server.workers())
        served(server, body, "after", 1)
        assert verdicts(server, "replaced") == 3


def test_workers_recycled_by_max_requests_leave_their_counts_only(tmp_path: Path) -> None:
    """max_requests: a recycled worker's readiness file goes, its counter and histogram files
    stay (its counts are part of every total). So the directory grows by two files per worker
    started (64 KiB each, allocated: telemetry.metric_files) until the server restarts."""
    metrics = tmp_path / "metrics"
    extra = {"GUNICORN_MAX_REQUESTS": "10", "GUNICORN_MAX_REQUESTS_JITTER": "0"}
    with gunicorn(tmp_path, 1, PROMETHEUS_MULTIPROC_DIR=str(metrics), **extra) as server:
        body = selfie_body(create_tenant(server.env, "recycled"))
        first = server.workers()
        for recycled in range(1, 3):
            posted = 0
            while server.workers() == first:  # at most 10 requests
                served(server, body, f"{recycled}-{posted}", 1)
                posted += 1
            server.wait_workers(1)
            first = server.workers()
            assert set(ready_pids(server)) == set(first)
        kinds = sorted(path.name.rsplit("_", 1)[0] for path in metrics.glob("*.db"))
        assert kinds == ["counter"] * 3 + ["gauge_liveall"] + ["histogram"] * 3


def test_an_old_master_killed_after_sigusr2_leaves_no_readiness_sample(tmp_path: Path) -> None:
    """SIGUSR2, then the old master SIGKILLed: its worker exits on its own (its parent gone),
    with no child_exit to drop its readiness file from the directory the new generation
    shares. A scrape drops it, not counting it as a ready worker for good."""
    with gunicorn(tmp_path, 1) as server:
        (old_worker,) = server.workers()
        new = upgrade(server)
        try:
            server.process.kill()
            server.process.wait(timeout=30)
            until(lambda: not alive(old_worker), timeout=STARTUP_S, every=0.05)
            assert set(ready_pids(server)) == set(http_workers(new))
        finally:
            stop_master(new)
    assert temporary_dirs(tmp_path) == []
