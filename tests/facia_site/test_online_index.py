"""Upgrading a PostgreSQL database that is serving: the index migration liveness 0007 builds its
index CONCURRENTLY, so the checks the running release records are not held while it builds,
and a second instance waiting for the migration lock does not deadlock with that build."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO, scratch_database
from tests.servers.processes import manage, until

TABLE = "liveness_livenesscheck"
INDEX = "liveness_check_tenant_time"
BEFORE = ("liveness", "0006_idempotent_answer")
# The migrate process's statement, waiting for a lock (its query is the CREATE INDEX).
BUILD_WAITING = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock' AND query ILIKE 'CREATE INDEX%%'"
)
ADVISORY_WAITING = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

pytestmark = pytest.mark.slow  # manage.py processes on a scratch PostgreSQL database


def count(db: psycopg.Connection, query: str) -> int:
    row = db.execute(query).fetchone()
    return 0 if row is None else int(row[0])


@contextmanager
def before_the_index(tmp_path: Path) -> Iterator[tuple[dict[str, str], psycopg.Connection]]:
    """A scratch database migrated up to the migration before the index, and a connection to
    it inside a transaction that holds what an INSERT into the check table holds (ROW
    EXCLUSIVE): a check being recorded, so the index build has to wait for it."""
    with scratch_database("online_index") as url:
        env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "DATABASE_URL": url}
        manage(env, "migrate", *BEFORE, "--noinput", "-v0")
        with psycopg.connect(url.replace("postgres://", "postgresql://")) as db:
            db.execute(f"LOCK TABLE {TABLE} IN ROW EXCLUSIVE MODE")
            yield env, db


def migrate(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "liveness", "0007", "--noinput", "-v0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def waiting(process: subprocess.Popen[str], db: psycopg.Connection, query: str) -> bool:
    assert process.poll() is None, process.communicate()[0]
    return count(db, query) >= 1


def index_is_valid(db: psycopg.Connection) -> bool:
    row = db.execute(
        "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"
        " WHERE relname = %s",
        [INDEX],
    ).fetchone()
    return bool(row and row[0])


def test_checks_are_recorded_while_the_index_builds(tmp_path: Path) -> None:
    """While the build waits for a check being recorded, another check can be recorded: a
    plain CREATE INDEX queues a SHARE lock that every later INSERT waits behind."""
    with before_the_index(tmp_path) as (env, recording):
        build = migrate(env)
        url = env["DATABASE_URL"].replace("postgres://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as other:
            until(lambda: waiting(build, other, BUILD_WAITING), timeout=120)
            other.execute("SET lock_timeout = '10s'")  # a bound on a hang: it takes no time
            with other.transaction():
                other.execute(f"LOCK TABLE {TABLE} IN ROW EXCLUSIVE MODE")
            recording.commit()
            output = build.communicate(timeout=120)[0]
            assert build.returncode == 0, output
            assert index_is_valid(other)


def test_a_waiting_instance_does_not_deadlock_with_the_build(tmp_path: Path) -> None:
    """A second instance migrating at the same time waits for the migration lock while the
    first builds the index; the build waits for every older snapshot, the waiter's included.
    Both finish, the index is valid (a waiter blocked in one statement: "deadlock detected")."""
    with before_the_index(tmp_path) as (env, recording):
        first = migrate(env)
        url = env["DATABASE_URL"].replace("postgres://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as other:
            until(lambda: waiting(first, other, BUILD_WAITING), timeout=120)
            second = migrate(env)
            until(lambda: waiting(second, other, ADVISORY_WAITING), timeout=120)
            recording.commit()
            outputs = [first.communicate(timeout=120)[0], second.communicate(timeout=120)[0]]
            assert [first.returncode, second.returncode] == [0, 0], outputs
            assert index_is_valid(other)


def test_an_index_built_but_not_recorded_is_kept(tmp_path: Path) -> None:
    """A migrate killed (SIGKILL, which nothing holds off) after the build but before its
    record leaves the valid index without the migration: the next migrate failed, "relation
    liveness_check_tenant_time already exists". It keeps the index and records the migration."""
    with scratch_database("index_unrecorded") as url:
        env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "DATABASE_URL": url}
        manage(env, "migrate", "liveness", "0007", "--noinput", "-v0")
        manage(env, "migrate", *BEFORE, "--fake", "--noinput", "-v0")  # built, not recorded
        manage(env, "migrate", "--noinput", "-v0")
        assert "[X] 0007_livenesscheck_tenant_time" in manage(env, "showmigrations", "liveness")
        with psycopg.connect(url.replace("postgres://", "postgresql://")) as db:
            assert index_is_valid(db)
