"""A full database (issue 9, item 5): checks answer 503 and so does /status_check, until there
is room again. SQLite's ``max_page_count`` gives the real SQLITE_FULL "database or disk is
full" that a full disk gives, without mounting anything; where a tmpfs can be mounted, a real
full disk under gunicorn too."""

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.models import Tenant
from liveness import runtime
from liveness.models import LivenessCheck
from tests.conftest import LIVE_JPG, Post, data_uri
from tests.servers.clients import create_tenant, post, selfie_body
from tests.servers.gunicorn import Gunicorn, gunicorn
from tests.servers.processes import until

UNLIMITED_PAGES = 1073741823  # SQLite's default max_page_count


def _pragma(statement: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {statement}")
        return int(cursor.fetchone()[0])


def _fill(tenant: Tenant) -> int:
    """Cap the file at its current size and insert check rows until one no longer fits."""
    _pragma(f"max_page_count = {_pragma('page_count')}")
    for written in range(100_000):
        try:
            with transaction.atomic():
                LivenessCheck.objects.create(tenant=tenant, latency_ms=1.0)
        except DatabaseError as exc:
            assert "full" in str(exc)
            return written
    raise AssertionError("the database never filled up")


@pytest.fixture
def full_database(db: None) -> Iterator[None]:
    if connection.vendor != "sqlite":
        pytest.skip("max_page_count is SQLite's")
    runtime.forget()
    yield
    _pragma(f"max_page_count = {UNLIMITED_PAGES}")
    runtime.forget()


def test_full_database_refuses_checks_and_readiness_until_there_is_room(
    full_database: None,
    warm_engine: None,
    client: Any,
    post_liveness: Post,
    tenant: tuple[Tenant, str],
) -> None:
    owner, hash_id = tenant
    body = {"hash_id": hash_id, "selfie_image": data_uri(LIVE_JPG)}
    assert client.get("/status_check").status_code == 200
    _fill(owner)
    runtime.forget()  # the success is remembered for a few seconds

    refused = post_liveness(body)
    assert (refused.status_code, refused["Retry-After"]) == (503, "1")
    status = client.get("/status_check")
    assert (status.status_code, status.content.decode()) == (503, runtime.DB_FULL)
    owner.refresh_from_db()
    assert owner.requests_used == 0  # the unit went with the record that did not fit

    _pragma(f"max_page_count = {UNLIMITED_PAGES}")  # room again
    assert client.get("/status_check").status_code == 200
    assert post_liveness(body).status_code == 201


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs CAP_SYS_ADMIN; skipped without it: the test above still runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill_disk(path: Path) -> None:
    with path.open("wb", buffering=0) as filler, contextlib.suppress(OSError):  # ENOSPC
        while True:
            filler.write(b"\0" * 65536)


def _every_worker_says(server: Gunicorn, status: int) -> bool:
    return all(server.status() == status for _ in range(6))


def test_full_disk_under_gunicorn(small_disk: Path, tmp_path: Path) -> None:
    """SQLite on a disk that fills up (ENOSPC): refused with 503, readiness 503, then back."""
    url = f"sqlite:///{small_disk / 'db.sqlite3'}"
    with gunicorn(tmp_path, workers=2, DATABASE_URL=url) as server:
        body = selfie_body(create_tenant(server.env, "disk-full"))
        assert post(server.base, body, "room").status == 201
        _fill_disk(small_disk / "filler")
        assert post(server.base, body, "full").status == 503
        until(lambda: _every_worker_says(server, 503), timeout=120)
        (small_disk / "filler").unlink()
        until(lambda: _every_worker_says(server, 200), timeout=120)
        assert post(server.base, body, "back").status == 201
