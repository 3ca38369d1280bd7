"""A full disk (issue 9, item 5) under gunicorn, where a tmpfs can be mounted: checks answer
503 and so does /status_check, until there is room again (SQLite's ``max_page_count`` gives
the same SQLITE_FULL in-process: tests/liveness/test_status_check_disk_full.py)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import skip_or_fail
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.disk import fill_disk, small_tmpfs
from tests.servers.entrypoint import entrypoint_env, run_entrypoint
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.processes import until

pytestmark = pytest.mark.system


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs CAP_SYS_ADMIN; skipped without it, failed under CI; the
    in-process test runs anyway)."""
    with small_tmpfs(tmp_path / "disk") as why_not:
        if why_not:
            skip_or_fail(why_not)
        yield tmp_path / "disk"


def _every_worker_says(server: Gunicorn, status: int) -> bool:
    return all(server.status() == status for _ in range(6))


def test_full_disk_under_gunicorn(small_disk: Path, tmp_path: Path) -> None:
    """SQLite on a disk that fills up (ENOSPC): refused with 503, readiness 503, then back."""
    url = f"sqlite:///{small_disk / 'db.sqlite3'}"
    with gunicorn(tmp_path, workers=2, DATABASE_URL=url) as server:
        body = selfie_body(create_tenant(server.env, "disk-full"))
        assert post(server.base, body, "room").status == 201
        fill_disk(small_disk / "filler")
        assert post(server.base, body, "full").status == 503
        until(lambda: _every_worker_says(server, 503), timeout=120)
        (small_disk / "filler").unlink()
        until(lambda: _every_worker_says(server, 200), timeout=120)
        assert post(server.base, body, "back").status == 201


def test_a_full_disk_under_the_metrics_too_answers_and_keeps_its_worker(
    small_disk: Path, tmp_path: Path
) -> None:
    """The whole disk full: the database and the metric files (PROMETHEUS_MULTIPROC_DIR, a
    temporary directory by default, on the same disk in a container). prometheus_client
    creates a worker's sample files sparse, and its first write to an unallocated page is a
    SIGBUS: the worker would die on its first request, without an answer, and each worker that
    replaced it on the first sample of its own. Here: 503 while full, 201 once there is room,
    the same worker throughout (telemetry.metric_files)."""
    url = f"sqlite:///{small_disk / 'db.sqlite3'}"
    metrics_dir = str(small_disk / "metrics")
    with gunicorn(tmp_path, 1, DATABASE_URL=url, PROMETHEUS_MULTIPROC_DIR=metrics_dir) as server:
        body = selfie_body(create_tenant(server.env, "whole-disk-full"))
        (worker,) = server.workers()
        fill_disk(small_disk / "filler")  # before the worker's first request: no sample file yet
        assert post(server.base, body, "full").status == 503
        assert server.status() == 503
        (small_disk / "filler").unlink()
        until(lambda: server.status() == 200, timeout=120)
        assert post(server.base, body, "back").status == 201
        assert server.workers() == [worker]
        scraped = requests.get(f"{server.base}/metrics", timeout=30)
        assert scraped.status_code == 200
        assert 'endpoint="liveness",method="POST",status="201"' in scraped.text


def test_a_full_disk_at_start_is_one_record_saying_so(small_disk: Path, tmp_path: Path) -> None:
    """bin/entrypoint serve on a migrated SQLite database whose disk is full: SQLite cannot
    open it (no room for its -shm file) and the start stops. The record says how little room
    the disk holding the database has, not only 'disk I/O error'."""
    env = entrypoint_env(tmp_path, 0, DATABASE_URL=f"sqlite:///{small_disk / 'db.sqlite3'}")
    assert run_entrypoint(env, "migrate").returncode == 0
    fill_disk(small_disk / "filler")
    done = run_entrypoint(env, "serve")
    assert done.returncode != 0
    first = json.loads((done.stdout + done.stderr).splitlines()[0])["message"]
    assert first.startswith(f"manage.py migrate: cannot connect to database sqlite:///{small_disk}")
    assert "(the disk holding it has 0 bytes free)" in first
