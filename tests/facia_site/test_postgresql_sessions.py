"""The settings of every PostgreSQL session of ours, on a real server (127.0.0.1:5432)."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import REPO, scratch_database
from tests.servers.processes import until


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, throw-away PostgreSQL database; skips only when no server answers."""
    with scratch_database("facia_sessions") as url:
        yield url


def connect(url: str, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=autocommit)


def backend_state(watcher: psycopg.Connection[tuple[object, ...]], pid: int) -> str | None:
    """What backend ``pid`` waits on ("Lock"), "" when it waits on nothing, None when gone."""
    row = watcher.execute(
        "SELECT coalesce(wait_event_type, '') FROM pg_stat_activity WHERE pid = %s", [pid]
    ).fetchone()
    return None if row is None else str(row[0])


def test_a_killed_workers_backend_does_not_wait_on(postgres_url: str) -> None:
    """A process on our settings' connection waits on a lock the test holds and is SIGKILLed
    (gunicorn's timeout): its backend notices within DATABASE_CLIENT_CHECK_S (2 s) and ends.
    Before, with PostgreSQL's client_connection_check_interval of 0, it waited on as long as
    the lock was held, holding a connection (the poll below ran out)."""
    env = {**os.environ, "DATABASE_URL": postgres_url, "DATABASE_TIMEOUT_S": "0"}
    env.pop("DATABASE_CLIENT_CHECK_S", None)
    with connect(postgres_url) as holder, connect(postgres_url, autocommit=True) as watcher:
        holder.execute("CREATE TABLE held ()")
        holder.commit()
        holder.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        waiter = subprocess.Popen(
            [sys.executable, "-m", "tests.facia_site.lock_waiter"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert waiter.stdout is not None
            pid, interval = waiter.stdout.readline().split()
            assert interval == "2s"
            until(lambda: backend_state(watcher, int(pid)) == "Lock")
        finally:
            waiter.send_signal(signal.SIGKILL)
            waiter.wait()
        until(lambda: backend_state(watcher, int(pid)) is None)
        holder.rollback()


CLIENT_SET = (
    "import django; django.setup(); from django.db import connection; "
    "cursor = connection.cursor(); "
    # client_encoding is libpq's own; the rest come from our ``options``.
    "cursor.execute(\"SELECT name FROM pg_settings WHERE source = 'client' "
    "AND name <> 'client_encoding' ORDER BY name\"); "
    "print(' '.join(name for (name,) in cursor.fetchall()))"
)


@pytest.mark.parametrize(
    ("timeout_s", "client_check_s", "expected"),
    [
        ("0", "0", ""),
        ("0", "2", "client_connection_check_interval"),
        ("3", "0", "lock_timeout statement_timeout"),
    ],
)
def test_a_setting_turned_off_is_not_sent(
    postgres_url: str, timeout_s: str, client_check_s: str, expected: str
) -> None:
    """What our sessions set on the server (libpq's ``options``): with DATABASE_TIMEOUT_S=0 and
    DATABASE_CLIENT_CHECK_S=0 nothing, not client_connection_check_interval=0 (PostgreSQL's
    default): a server before 14 refuses that unknown parameter and a pooler that forbids
    startup options refuses the connection, so an operator could not turn it off to connect."""
    env = {k: v for k, v in os.environ.items() if k != "PGOPTIONS"}
    env |= {
        "DATABASE_URL": postgres_url,
        "DATABASE_TIMEOUT_S": timeout_s,
        "DATABASE_CLIENT_CHECK_S": client_check_s,
        "DJANGO_SETTINGS_MODULE": "facia_site.settings",
    }
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_SET],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
