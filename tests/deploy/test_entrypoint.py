"""bin/entrypoint: the one way the service starts (make serve, the image, the k8s Job); its
one-shot commands and failures (serving: tests/system/test_entrypoint.py)."""

import contextlib
import fcntl
import json
import logging
import os
import pty
import re
import runpy
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from facia_site.migrating import LOCK_KEY, WAITING
from telemetry.gunicorn import PREPARED_BY
from tests.conftest import REPO, scratch_database, skip_or_fail
from tests.servers.entrypoint import ENTRYPOINT, entrypoint_env, run_entrypoint
from tests.servers.processes import children, free_port, in_session, stop, until
from tests.servers.readonly import read_only


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    env = entrypoint_env(tmp_path, 0)
    assert run_entrypoint(env, "migrate").returncode == 0
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert {"accounts_tenant", "accounts_hashid", "liveness_livenesscheck"} <= tables


def test_install_models_is_a_no_op_when_present(tmp_path: Path) -> None:
    # As in the image: MODEL_SOURCE does not exist, the installed models are used as they are.
    env = entrypoint_env(tmp_path, 0, MODEL_SOURCE=str(tmp_path / "absent"))
    done = run_entrypoint(env, "install-models")
    assert done.returncode == 0, done.stderr
    assert "already up to date" in json.loads(done.stdout)["message"]


@pytest.mark.parametrize(("log_format", "plain"), [("json", False), (" Plain ", True)])
def test_set_up_output_follows_log_format_as_django_reads_it(
    tmp_path: Path, log_format: str, plain: bool
) -> None:
    env = entrypoint_env(tmp_path, 0, MODEL_SOURCE=str(tmp_path / "absent"), LOG_FORMAT=log_format)
    done = run_entrypoint(env, "install-models")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "already up to date" in line
    assert line.startswith("{") is not plain


def _bad_database_env(tmp_path: Path) -> dict[str, str]:
    """Nothing listens on the port: the connection is refused. LOG_FORMAT unset (auto)."""
    url = f"postgres://facia@127.0.0.1:{free_port()}/facia"
    env = entrypoint_env(tmp_path, 0, DATABASE_URL=url)
    del env["LOG_FORMAT"]
    return env


def test_a_bad_database_url_is_one_json_record_naming_the_cause(tmp_path: Path) -> None:
    done = run_entrypoint(_bad_database_env(tmp_path), "serve")  # output not a terminal: JSON
    assert done.returncode != 0
    records = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
    assert 1 <= len(records) <= 3, records  # not 93: one per traceback line
    first = records[0]
    assert first["levelname"] == "ERROR"
    assert first["message"].startswith(
        "manage.py migrate: cannot connect to database postgresql://facia@127.0.0.1:"
    )
    assert "Connection refused" in first["message"]
    assert first["exc_info"].startswith("Traceback (most recent call last):")


TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")


def run_in_a_terminal(env: dict[str, str], *args: str, timeout: float = 120.0) -> str:
    """bin/entrypoint ARGS with a pseudo-terminal as stdin, stdout and stderr; its output."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(ENTRYPOINT), *args],
        cwd=REPO,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([controller], [], [], 1.0)[0]:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: every end of the terminal is closed
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        os.close(controller)
        stop(process)
    return output.decode().replace("\r\n", "\n")


def test_on_a_terminal_the_same_failure_is_human_readable(tmp_path: Path) -> None:
    lines = run_in_a_terminal(_bad_database_env(tmp_path), "serve").splitlines()
    records = [line for line in lines if TEXT_RECORD.match(line)]
    assert 1 <= len(records) <= 3, lines[:5]
    assert records[0] == lines[0]
    assert " ERROR " in lines[0] and "cannot connect to database" in lines[0]
    assert "Connection refused" in lines[0]
    assert "  Traceback (most recent call last):" in lines  # inside the record, indented
    assert not any(line.startswith("{") for line in lines)


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    done = run_entrypoint(entrypoint_env(tmp_path, 0), "bogus")
    assert done.returncode == 2
    assert "usage: bin/entrypoint" in done.stderr


def test_bind_address_from_host_and_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_123.db").write_bytes(b"stale")
    config = runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    assert config["bind"] == "0.0.0.0:8123"
    assert list((tmp_path / "metrics").glob("*.db")) == []  # emptied at start


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "bind"),
    [
        ("", "127.0.0.1"),  # blank: loopback, not gunicorn's every interface
        (" ", "127.0.0.1"),
        ("localhost", "localhost"),
        ("::1", "[::1]"),  # bare, gunicorn split it at its colons
        ("[::1]", "[::1]"),
    ],
)
def test_bind_host_forms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, bind: str
) -> None:
    if "::" in host and not ipv6_loopback():
        skip_or_fail("this machine has no IPv6 loopback to bind")
    monkeypatch.setenv("HOST", host)
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    config = runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    assert config["bind"] == f"{bind}:8123"


def test_a_corrupt_sqlite_file_is_one_record_naming_it(tmp_path: Path) -> None:
    """Not 'manage.py migrate: DatabaseError: file is not a database', which file unsaid."""
    database = tmp_path / "db.sqlite3"
    database.write_bytes(b"not a database, " * 1024)
    done = run_entrypoint(entrypoint_env(tmp_path, 0), "serve")
    assert done.returncode != 0
    records = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
    assert records[0]["message"] == (
        f"manage.py migrate: database sqlite:///{database}: DatabaseError: file is not a database"
    )
    assert database.read_bytes() == b"not a database, " * 1024  # left as it was, for the operator


def test_a_read_only_sqlite_directory_is_one_record_naming_it(tmp_path: Path) -> None:
    """Not "manage.py migrate: cannot connect to database sqlite:///...: unable to open
    database file" and a 60-line traceback, with nothing saying the directory is read-only."""
    env = entrypoint_env(tmp_path, 0)
    assert run_entrypoint(env, "migrate").returncode == 0
    done = run_entrypoint(env, "migrate", prefix=read_only(tmp_path))
    assert done.returncode == 1
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["message"] == (
        f"manage.py migrate: cannot connect to database sqlite:///{tmp_path / 'db.sqlite3'}: "
        f"unable to open database file (its directory {tmp_path} is on a read-only file system)"
    )
    assert "exc_info" not in record


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        # gunicorn's own int() at import: a 16-line ValueError traceback.
        ("WEB_CONCURRENCY=two", "WEB_CONCURRENCY='two': expected a whole number"),
        # gunicorn listened with no worker: every connection held, never answered.
        ("WEB_CONCURRENCY=0", "WEB_CONCURRENCY='0': expected a whole number from 1 to 1024"),
        # A 30-line OverflowError traceback from gunicorn's bind.
        ("PORT=-1", "PORT='-1': expected a whole number from 1 to 65535"),
        ("PORT=70000", "PORT='70000': expected a whole number from 1 to 65535"),
        # "Failed to read config file" and a traceback.
        ("GUNICORN_TIMEOUT=0", "GUNICORN_TIMEOUT='0': expected at least 1"),
        ("GUNICORN_MAX_REQUESTS_JITTER=x", "GUNICORN_MAX_REQUESTS_JITTER='x': expected a whole"),
        ("TASK_WORKERS=-1", "TASK_WORKERS='-1': expected a whole number from 0 to 64"),
        # gunicorn logged five bind retries, one a second, then "Can't connect" and exit 1.
        ("HOST=garbage", "HOST='garbage': expected an IP address or a host name of this"),
        ("HOST=10.9.9.9", "HOST='10.9.9.9': expected an IP address or a host name of this"),
    ],
)
def test_a_bad_server_setting_is_one_record_naming_it(
    tmp_path: Path, setting: str, expected: str
) -> None:
    name, _, value = setting.partition("=")
    env = entrypoint_env(tmp_path, 0, MIGRATE_ON_START="0", MODEL_SOURCE=str(tmp_path / "absent"))
    env["PORT"] = str(free_port())  # entrypoint_env's 0 would itself be refused
    env[name] = value
    done = subprocess.run(
        [str(ENTRYPOINT), "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    records = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
    assert "already up to date" in records[0]["message"]  # install_models, then gunicorn
    assert len(records) == 2, records
    assert records[1]["levelname"] == "ERROR"
    assert records[1]["message"].startswith(f"gunicorn: ImproperlyConfigured: {expected}")
    assert "exc_info" not in records[1]


def test_forwarded_allow_ips_is_checked_before_gunicorn_reads_it(tmp_path: Path) -> None:
    """gunicorn reads FORWARDED_ALLOW_IPS itself, before its config file: a bad one was
    "Error: 'bogus' does not appear to be an IPv4 or IPv6 network", naming no variable.
    Through bin/entrypoint the first step stops on it; `python -m facia_site.serve` (the
    step that execs gunicorn) stops on it too."""
    env = entrypoint_env(tmp_path, free_port(), FORWARDED_ALLOW_IPS="bogus")
    env.update(MIGRATE_ON_START="0", MODEL_SOURCE=str(tmp_path / "absent"))
    expected = "ImproperlyConfigured: FORWARDED_ALLOW_IPS='bogus': 'bogus' does not appear"
    for command, step in (
        ([str(ENTRYPOINT), "serve"], "manage.py install_models"),
        ([sys.executable, "-m", "facia_site.serve"], "gunicorn"),
    ):
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1
        records = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
        assert len(records) == 1, records
        assert records[0]["levelname"] == "ERROR"
        assert records[0]["message"].startswith(f"{step}: {expected}")
        assert "exc_info" not in records[0]


def test_a_blank_web_concurrency_is_the_default(tmp_path: Path) -> None:
    """``WEB_CONCURRENCY=`` reached gunicorn's int(""): a traceback. Now it is unset, and the
    next setting read (a bad PORT here, so that nothing starts) is the one reported."""
    env = entrypoint_env(tmp_path, 0, MIGRATE_ON_START="0", MODEL_SOURCE=str(tmp_path / "absent"))
    env.update(WEB_CONCURRENCY=" ", PORT="http")
    done = run_entrypoint(env, "serve")
    assert done.returncode == 1
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["message"] == "gunicorn: ImproperlyConfigured: PORT='http': expected a whole number"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_command_before_the_migration_says_to_migrate(tmp_path: Path, engine: str) -> None:
    """Not "cannot connect to database sqlite:///...: no such table: accounts_tenant" and
    its traceback (a command closes its connections before its error is reported), and on
    PostgreSQL a ProgrammingError's traceback."""
    with contextlib.ExitStack() as stack:
        if engine == "sqlite":
            url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
        else:
            url = stack.enter_context(scratch_database("ops_unmigrated"))
        env = entrypoint_env(tmp_path, 0, DATABASE_URL=url)
        done = run_entrypoint(env, "manage", "create_tenant", "acme")
    assert done.returncode == 1 and done.stdout == ""  # a command logs on stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert len(records) == 1, records
    target = url if engine == "sqlite" else url.replace("postgres://", "postgresql://")
    assert records[0]["message"] == (
        f"manage.py create_tenant: database {target} has no table accounts_tenant: it is not "
        "migrated; run `manage.py migrate` (`bin/entrypoint migrate`) first"
    )
    assert "exc_info" not in records[0]


def test_a_locked_database_is_not_called_unreachable(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past the busy timeout: not "cannot
    connect to database ...: database is locked", since the command has connected."""
    env = entrypoint_env(tmp_path, 0, DATABASE_TIMEOUT_S="1")
    assert run_entrypoint(env, "migrate").returncode == 0
    holder = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        done = run_entrypoint(env, "manage", "create_tenant", "acme")
    finally:
        holder.close()
    assert done.returncode == 1
    first = json.loads(done.stderr.splitlines()[0])
    assert first["message"] == (
        f"manage.py create_tenant: database sqlite:///{tmp_path / 'db.sqlite3'}: "
        "OperationalError: database is locked"
    )


def test_instances_starting_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    """Three instances on one fresh PostgreSQL database, each migrating at start: none exits 1
    ("relation accounts_tenant already exists", a duplicate pg_type key)."""
    with scratch_database("ops_migrate_race") as url:
        env = entrypoint_env(tmp_path, 0, DATABASE_URL=url)
        starts = [
            subprocess.Popen(
                [str(ENTRYPOINT), "migrate"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        outputs = [start.communicate(timeout=300)[0] for start in starts]
        assert [start.returncode for start in starts] == [0, 0, 0], outputs
        with psycopg.connect(url.replace("postgres://", "postgresql://")) as db:
            twice = db.execute(
                "SELECT app, name FROM django_migrations GROUP BY 1, 2 HAVING count(*) > 1"
            ).fetchall()
    assert twice == []


def test_a_migration_waits_for_the_one_running(tmp_path: Path) -> None:
    """Another instance holds the migration lock: migrate says so and waits until it ends."""
    with scratch_database("ops_migrate_wait") as url:
        env = entrypoint_env(tmp_path, 0, DATABASE_URL=url)
        with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True) as db:
            db.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
            waiting = subprocess.Popen(
                [str(ENTRYPOINT), "migrate"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
            )

            def blocked() -> bool:
                assert waiting.poll() is None, "migrate ran while another held the lock"
                row = db.execute(  # this scratch database's: other runs may share the server
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                ).fetchone()
                return row is not None and row[0] == 1

            until(blocked, timeout=120)
            db.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        output = waiting.communicate(timeout=300)[0]
    assert waiting.returncode == 0, output
    assert "another process is migrating this database: waiting for it" in output


def test_migrations_started_together_on_a_fresh_sqlite_file_take_turns(tmp_path: Path) -> None:
    """Two migrate at once on a fresh SQLite file, in rounds: without the lock one exited 1 in
    9 rounds of 9 ("table ... already exists", "duplicate column name: beat_at")."""
    for round_ in range(3):
        env = entrypoint_env(tmp_path, 0, DATABASE_URL=f"sqlite:///{tmp_path / f'{round_}.db'}")
        starts = [
            subprocess.Popen(
                [str(ENTRYPOINT), "migrate"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outputs = [start.communicate(timeout=300)[0] for start in starts]
        assert [start.returncode for start in starts] == [0, 0], outputs
        with sqlite3.connect(tmp_path / f"{round_}.db") as db:
            twice = db.execute(
                "SELECT app, name FROM django_migrations GROUP BY 1, 2 HAVING count(*) > 1"
            ).fetchall()
        assert twice == []


def blocked_on(path: Path) -> bool:
    """Whether a process waits for an flock on ``path`` (/proc/locks marks a waiter "->")."""
    inode = f":{path.stat().st_ino} "
    locks = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and "FLOCK" in line and inode in line for line in locks)


def test_a_sqlite_migration_waits_for_the_one_running(tmp_path: Path) -> None:
    """Another process holds the SQLite file's migration lock: migrate says so and waits."""
    env = entrypoint_env(tmp_path, 0)
    lock = tmp_path / "db.sqlite3.migrate-lock"
    with lock.open("a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        waiting = subprocess.Popen(
            [str(ENTRYPOINT), "migrate"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
        )

        def blocked() -> bool:
            assert waiting.poll() is None, "migrate ran while another held the lock"
            return blocked_on(lock)

        until(blocked, timeout=120)
    output = waiting.communicate(timeout=300)[0]
    assert waiting.returncode == 0, output
    assert WAITING in output


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        # Every new worker overflowed gevent's semaphore; gunicorn replaced them in a loop.
        ("GUNICORN_WORKER_CONNECTIONS", "100000000000000000000", "from 1 to 10000"),
        # gunicorn spawned task workers until memory ran out (36 in the first 6 s).
        ("TASK_WORKERS", "100000000000000000000", "from 0 to 64"),
        ("WEB_CONCURRENCY", "100000000000000000000", "from 1 to 1024"),
    ],
)
def test_absurd_server_sizes_are_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: str,
    expected: str,
) -> None:
    """Read in this process (as gunicorn reads its config file), so that nothing can fork."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv(PREPARED_BY, "")
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    assert stopped.value.code == 1
    reported = f"gunicorn: ImproperlyConfigured: {name}='{value}': expected a whole number "
    assert reported + expected in caplog.text


# Stopping a set-up step: bin/entrypoint migrate waits for the migration lock that this test
# holds, and is signalled. Before, its step (captured by `$(...)`) never heard of the signal.
WAITING_FOR_A_LOCK = (  # this scratch database's: other runs may share the server
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
OTHER_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
# A PID namespace without privileges (a user namespace maps this user to its root): there
# bin/entrypoint is PID 1, as in a container, and a signal it has no handler for is dropped.
UNSHARE = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]


def count(db: psycopg.Connection, query: str) -> int:
    row = db.execute(query).fetchone()
    return 0 if row is None else int(row[0])


@contextlib.contextmanager
def migration_lock_held(
    tmp_path: Path, prefix: str
) -> Iterator[tuple[dict[str, str], psycopg.Connection]]:
    """The environment of a scratch PostgreSQL database whose migration lock ``db`` holds."""
    with scratch_database(prefix) as url:
        env = entrypoint_env(tmp_path, 0, DATABASE_URL=url)
        with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True) as db:
            db.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
            yield env, db


@contextlib.contextmanager
def waiting_for_the_lock(
    db: psycopg.Connection, command: list[str], env: dict[str, str], **options: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in a session of its own, once its migration waits for the lock; whatever
    of that session a failed test leaves running is killed at the end."""
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True, **options)
    try:
        until(lambda: process.poll() is not None or count(db, WAITING_FOR_A_LOCK) == 1, 120)
        assert process.poll() is None, f"exited with {process.returncode} before waiting"
        yield process
    finally:
        for pid in in_session(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        process.wait()


def assert_nothing_left(db: psycopg.Connection, session: int) -> None:
    """No lock request, no backend of the step's (its query cancelled, its connection
    closed: a step killed outright left its backend waiting for the lock), no process."""
    until(lambda: count(db, WAITING_FOR_A_LOCK) == 0, timeout=60)
    until(lambda: count(db, OTHER_BACKENDS) == 0, timeout=60)
    until(lambda: not in_session(session), timeout=60)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_step_and_leaves_nothing_behind(tmp_path: Path, signum: int) -> None:
    """Not sh dying at once while its step, an orphan, goes on waiting for the lock."""
    with migration_lock_held(tmp_path, "ops_migrate_stop") as (env, db):
        command = [str(ENTRYPOINT), "migrate"]
        with waiting_for_the_lock(db, command, env, stdout=subprocess.PIPE) as process:
            process.send_signal(signum)
            output = process.communicate(timeout=60)[0].decode()
            assert_nothing_left(db, process.pid)
            assert process.returncode == stopped_by(signum), output
    records = [json.loads(line) for line in output.splitlines()]  # still one JSON record set
    assert records[0]["message"] == "another process is migrating this database: waiting for it"
    assert records[-1]["name"] == "entrypoint.migrate"
    assert records[-1]["levelname"] == "ERROR"
    assert records[-1]["message"] == "entrypoint.migrate: stopped by SIGTERM"


def stopped_by(signum: int) -> int:
    """bin/entrypoint's status once signal ``signum`` sent to it has stopped a step: exit
    128+N, but killed by SIGINT (Popen's -2), so that a shell loop running it stops too."""
    return -signal.SIGINT if signum == signal.SIGINT else 128 + signum


def runs_steplog(pid: int) -> bool:
    """Whether a child of ``pid`` runs facia_site.steplog (earlier children run other
    commands: the entrypoint's $(...) and its var dir's set-up)."""
    return any(
        b"facia_site.steplog" in Path(f"/proc/{child}/cmdline").read_bytes()
        for child in children(pid)
    )


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_as_the_step_starts_still_logs_its_stop(
    tmp_path: Path, signum: int, log_format: str
) -> None:
    """The signal sent as soon as the step's runner (facia_site.steplog) exists: Python takes
    55-72 ms to start before steplog handles the entrypoint's SIGUSR1, whose default action
    kills it. Still the stop record, not sh's "User defined signal 1" on stderr."""
    env = entrypoint_env(tmp_path, free_port(), LOG_FORMAT=log_format)
    process = subprocess.Popen(
        [str(ENTRYPOINT), "migrate"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        until(lambda: process.poll() is not None or runs_steplog(process.pid), 60, every=0.001)
        process.send_signal(signum)
        out, err = (stream.decode() for stream in process.communicate(timeout=120))
    finally:
        stop(process)
    assert process.returncode == stopped_by(signum), (out, err)
    assert "User defined signal" not in err, err
    last = out.splitlines()[-1]
    if log_format == "json":
        record = json.loads(last)
        assert (record["name"], record["levelname"]) == ("entrypoint.migrate", "ERROR"), last
        last = record["message"]
    assert last == "entrypoint.migrate: stopped by SIGTERM", (out, err)


def unprivileged_pid_namespaces() -> bool:
    if shutil.which(UNSHARE[0]) is None:
        return False
    return subprocess.run([*UNSHARE, "true"], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_as_pid_1_a_signal_stops_a_step(tmp_path: Path, signum: int) -> None:
    """As a container's PID 1 (docker stop: SIGTERM; docker run's proxied Ctrl-C: SIGINT).
    Not ignored until the runtime's SIGKILL after its grace period."""
    if not unprivileged_pid_namespaces():
        skip_or_fail("unshare cannot create a PID namespace without privileges here")
    with migration_lock_held(tmp_path, "ops_migrate_pid1") as (env, db):
        command = [*UNSHARE, str(ENTRYPOINT), "migrate"]
        with waiting_for_the_lock(db, command, env, stdout=subprocess.PIPE) as process:
            (entrypoint,) = children(process.pid)
            status = Path(f"/proc/{entrypoint}/status").read_text()
            assert re.search(r"^NSpid:\s+\d+\s+1$", status, re.MULTILINE), status
            os.kill(entrypoint, signum)
            output = process.communicate(timeout=60)[0].decode()
            assert_nothing_left(db, process.pid)
            assert process.returncode == 128 + signum, output  # unshare exits with its status
    assert (
        json.loads(output.splitlines()[-1])["message"] == "entrypoint.migrate: stopped by SIGTERM"
    )


def make_controlling_terminal() -> None:
    """In the child: its new session's controlling terminal is its standard input."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_ctrl_c_on_a_terminal_stops_a_step(tmp_path: Path) -> None:
    """`make serve`'s Ctrl-C: the terminal signals its foreground process group (sh and
    facia_site.steplog; the step has a group of its own, so that it is told once)."""
    controller, terminal = pty.openpty()
    on_the_terminal: dict[str, Any] = {"stdin": terminal, "stdout": terminal, "stderr": terminal}
    command = [str(ENTRYPOINT), "serve"]
    try:
        with (
            migration_lock_held(tmp_path, "ops_migrate_ctrl_c") as (env, db),
            waiting_for_the_lock(
                db, command, env, preexec_fn=make_controlling_terminal, **on_the_terminal
            ) as process,
        ):
            os.write(controller, b"\x03")  # Ctrl-C
            status = process.wait(timeout=60)
            assert_nothing_left(db, process.pid)
            assert status == -signal.SIGINT  # killed by it, as sh's default action would
    finally:
        os.close(terminal)
        os.close(controller)


def checkout_copy(tmp_path: Path, with_venv: bool) -> Path:
    """A checkout as a person has one: this repository's files (linked), bin/entrypoint copied,
    and, ``with_venv``, a `.venv` whose python is the one running the tests."""
    checkout = tmp_path / "checkout"
    (checkout / "bin").mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name not in {".venv", ".git", "bin", "var", "site"}:
            (checkout / entry.name).symlink_to(entry)
    shutil.copy2(ENTRYPOINT, checkout / "bin" / "entrypoint")
    if with_venv:
        python = checkout / ".venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
    return checkout


def without_python(tmp_path: Path) -> dict[str, str]:
    """No PYTHON, and first on PATH a python3 without Django (a fresh venv), as on a machine
    whose system Python has none."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    env = entrypoint_env(tmp_path, 0, PATH=f"{bare / 'bin'}:/usr/bin:/bin")
    del env["PYTHON"]
    return env


def run_in(checkout: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The checkout's bin/entrypoint, started from outside it (it finds its checkout itself)."""
    command = [str(checkout / "bin" / "entrypoint"), *args]
    return subprocess.run(
        command, cwd=checkout.parent, env=env, capture_output=True, text=True, timeout=120
    )


def test_without_python_set_a_checkout_uses_its_venv(tmp_path: Path) -> None:
    """`bin/entrypoint migrate` from a checkout, PYTHON unset: python3 from PATH had no Django,
    and the step failed in a `No module named 'django'` traceback."""
    checkout = checkout_copy(tmp_path, with_venv=True)
    done = run_in(checkout, without_python(tmp_path), "migrate")
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert "accounts_tenant" in tables


def test_without_python_or_venv_it_fails_in_one_clear_line(tmp_path: Path) -> None:
    checkout = checkout_copy(tmp_path, with_venv=False)
    done = run_in(checkout, without_python(tmp_path), "migrate")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "bin/entrypoint: python3 cannot import Django: run `make serve` once (it creates "
        ".venv) or set PYTHON to the project's interpreter\n"
    )


def test_prune_runs_both_commands_and_fails_with_the_first(tmp_path: Path) -> None:
    """The CronJob's `bin/entrypoint prune`: a failing prune_checks (here an unmigrated
    database) does not skip prune_sessions, and the run fails."""
    done = run_entrypoint(entrypoint_env(tmp_path, 0), "prune")
    assert done.returncode == 1, done.stdout + done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    failed = [r["message"].split(":")[0] for r in records if r["levelname"] == "ERROR"]
    assert failed == ["manage.py prune_checks", "manage.py prune_sessions"], records


def test_prune_passes_its_days_to_both_commands(tmp_path: Path) -> None:
    """`bin/entrypoint prune --days 7` pruned at LIVENESS_RETENTION_DAYS (90) and said
    nothing of the 7; both commands now prune at 7 days."""
    env = entrypoint_env(tmp_path, 0)
    assert run_entrypoint(env, "migrate").returncode == 0
    for days in (["--days", "7"], ["--days=7"]):
        done = run_entrypoint(env, "prune", *days)
        assert done.returncode == 0, done.stdout + done.stderr
        messages = [json.loads(line)["message"] for line in done.stdout.splitlines()]
        assert len(messages) == 2, messages
        assert "older than 7 day(s)" in messages[0] and "check(s)" in messages[0]
        assert messages[1].startswith("deleted 0 capture session(s) older than 7 day(s); ")
    # The commands check N: out of range stops both, naming --days.
    done = run_entrypoint(env, "prune", "--days", "100000")
    assert done.returncode == 1
    assert done.stdout.count("--days must be 0 to 36500") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--workers", "4"], "serve: unexpected argument '--workers': it takes none"),
        (["prune", "7"], "prune: unexpected argument '7': it takes only --days N"),
        (["prune", "--days", "7", "--dry-run"], "prune: unexpected argument '--dry-run'"),
        (["prune", "--days"], "prune: --days needs a number of days after it"),
    ],
)
def test_an_argument_a_command_does_not_take_stops_it(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = run_entrypoint(entrypoint_env(tmp_path, 0), *args)
    assert done.returncode == 2
    assert done.stderr == f"bin/entrypoint {message}" + done.stderr.split(message, 1)[1]
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert not (tmp_path / "db.sqlite3").exists()  # refused before any step ran


def test_migrate_and_install_models_take_their_commands_arguments(tmp_path: Path) -> None:
    env = entrypoint_env(tmp_path, 0, MODEL_SOURCE=str(tmp_path / "absent"))
    done = run_entrypoint(env, "migrate", "--plan")  # lists the migrations, applies none
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Planned operations" in done.stdout
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert "accounts_tenant" not in tables
    # An empty destination, from a source with no models: the step fails naming the source.
    given, dest = tmp_path / "given", tmp_path / "dest"
    done = run_entrypoint(env, "install-models", "--source", str(given), "--dest", str(dest))
    assert done.returncode == 1
    assert f"(source: {given};" in done.stdout
    done = run_entrypoint(env, "migrate", "--bogus")
    assert done.returncode == 2
    assert "unrecognized arguments: --bogus" in done.stdout + done.stderr


def test_install_models_into_the_var_dir_is_refused_and_keeps_it(tmp_path: Path) -> None:
    """MODEL_DIR set to FACIA_VAR_DIR itself: install-models deleted the database and the
    secret key with the folder. It is refused, exit 2, the folder as it was."""
    var = tmp_path / "var2"
    env = entrypoint_env(
        tmp_path, 0, DATABASE_URL=f"sqlite:///{var / 'db.sqlite3'}", FACIA_VAR_DIR=str(var)
    )
    env.pop("SECRET_KEY", None)  # the key file in FACIA_VAR_DIR, which migrate creates
    assert run_entrypoint(env, "migrate").returncode == 0
    kept = {p.name: p.read_bytes() for p in var.iterdir() if p.is_file()}
    assert {"db.sqlite3", "secret_key"} <= kept.keys()
    done = run_entrypoint({**env, "MODEL_DIR": str(var)}, "install-models")
    assert done.returncode == 2, done.stdout + done.stderr
    [record] = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["levelname"] == "ERROR"
    assert f"refusing to install the models into {var}: it holds files" in record["message"]
    assert {p.name: p.read_bytes() for p in var.iterdir() if p.is_file()} == kept


def test_relative_paths_are_the_callers(tmp_path: Path) -> None:
    """bin/entrypoint run from another directory: the relative paths given to it (variables
    and arguments) are that directory's, as for any command. It cd'd to its checkout first,
    and read MODEL_SOURCE=given as the checkout's given/, wrote a backup into the checkout."""
    caller = tmp_path / "caller dir"
    caller.mkdir()
    env = entrypoint_env(
        tmp_path,
        0,
        DATABASE_URL="sqlite:///db.sqlite3",
        FACIA_VAR_DIR="var",
        MODEL_SOURCE=" given ",
        PYTHON=os.path.relpath(sys.executable, caller),
    )
    env.pop("SECRET_KEY", None)  # the key file in FACIA_VAR_DIR, which migrate creates

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ENTRYPOINT), *args],
            cwd=caller,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = run("migrate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (caller / "db.sqlite3").is_file() and (caller / "var" / "secret_key").is_file()
    # From a source with no models into an empty destination: the step fails naming both.
    for dest in (["--dest", "dest"], ["--dest=dest"]):
        done = run("install-models", *dest)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"(source: {caller / 'given'};" in done.stdout
        assert (caller / "dest.lock").is_file()  # the install's lock, beside its destination
        (caller / "dest.lock").unlink()
    done = run("install-models", "--source", "elsewhere", "--dest", "dest")
    assert f"(source: {caller / 'elsewhere'};" in done.stdout
    done = run("manage", "backup", "copy.sqlite3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (caller / "copy.sqlite3").is_file()


def test_a_sqlite_scheme_in_any_case_is_the_callers_path(tmp_path: Path) -> None:
    """URL schemes are case-insensitive (RFC 3986 3.1), and the settings read SQLite:///up.db
    as sqlite:///up.db: the file is the caller's too, not the checkout's."""
    checkout = checkout_copy(tmp_path, with_venv=False)
    env = entrypoint_env(tmp_path, 0, DATABASE_URL=" SQLite:///up.sqlite3 ")
    done = run_in(checkout, env, "migrate")  # from tmp_path, the checkout's parent
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (checkout / "up.sqlite3").exists()
    with sqlite3.connect(tmp_path / "up.sqlite3") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert "accounts_tenant" in tables


IN_MEMORY = (
    "bin/entrypoint: DATABASE_URL names SQLite's in-memory database, which each process (the "
    "migration, every worker, each command) would open empty for itself: name a file, "
    "sqlite:///PATH\n"
)


@pytest.mark.parametrize(
    ("url", "args"),
    [
        ("sqlite:///:memory:", ["migrate"]),  # a file named :memory: in the caller's directory
        ("sqlite://:memory:", ["migrate"]),  # a migration lost with its step
        ("SQLite:///:memory:", ["migrate"]),
        ("sqlite://", ["migrate"]),  # no file: dj-database-url's in-memory default
        ("sqlite:///%3Amemory%3A?mode=rwc", ["migrate"]),
        ("sqlite:///:memory:", ["serve"]),  # never ready: each worker's database unmigrated
        ("sqlite://:memory:", ["manage", "check"]),
    ],
)
def test_an_in_memory_sqlite_database_is_refused(tmp_path: Path, url: str, args: list[str]) -> None:
    """Each process would open its own empty database: the migrate step's schema ends with
    it, and `serve` answered /status_check 503 "Database not migrated: 80 migration(s) not
    applied" from every worker. One line, exit 2, before any step."""
    checkout = checkout_copy(tmp_path, with_venv=False)
    done = run_in(checkout, entrypoint_env(tmp_path, 0, DATABASE_URL=url), *args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", IN_MEMORY)
    assert not (tmp_path / ":memory:").exists() and not (checkout / ":memory:").exists()
    assert not (tmp_path / "secret_key").exists()  # refused before the set-up step ran


# Ctrl-C during the start-up migration (make setup's `manage.py migrate`, or bin/entrypoint's
# step, which a terminal's Ctrl-C reaches through facia_site.steplog): it logged Python's
# KeyboardInterrupt traceback. It ends in one line, killed by SIGINT (a step of the
# entrypoint's: steplog's status 130). The migration waits for the lock
# this test holds on the SQLite database's migrate-lock file: a point to signal it at.
@contextlib.contextmanager
def sqlite_migration_lock_held(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    env = entrypoint_env(tmp_path, 0, LOG_FORMAT="text")
    lock = tmp_path / "db.sqlite3.migrate-lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield env, lock


def waits_for_flock(lock: Path) -> bool:
    """Whether a process waits for an flock on ``lock`` (/proc/locks lists the waiters, ->)."""
    inode = f":{lock.stat().st_ino} "
    lines = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and "FLOCK" in line and inode in line for line in lines)


def assert_interrupted_in_one_line(output: str, command: str) -> None:
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    stopped = [line for line in output.splitlines() if "SIGINT" in line]
    assert stopped and stopped[0].endswith(
        f"{command}: interrupted (SIGINT, Ctrl-C): stopped before it finished"
    ), output


def test_ctrl_c_during_manage_py_migrate_is_one_line_and_dies_of_it(tmp_path: Path) -> None:
    """As `make setup` (`make migrate`) runs it: the log line saying it waits is the point."""
    with sqlite_migration_lock_held(tmp_path) as (env, _lock):
        process = subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            seen = ""
            for line in process.stderr:
                seen += line.decode()
                if WAITING in seen:
                    break
            assert WAITING in seen, seen
            process.send_signal(signal.SIGINT)
            rest = process.communicate(timeout=60)[1].decode()
        finally:
            stop(process)
    assert process.returncode == -signal.SIGINT, rest  # killed by it: not an exit status
    assert_interrupted_in_one_line(rest, "manage.py migrate")
    assert len(rest.splitlines()) == 1, rest


def test_ctrl_c_during_the_entrypoints_migrate_step_is_one_line_and_130(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches facia_site.steplog, which passes it on to the step: the
    SIGINT sent to steplog once the step waits for the migration lock."""
    with sqlite_migration_lock_held(tmp_path) as (env, lock):
        process = subprocess.Popen(
            [str(ENTRYPOINT), "migrate"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            until(lambda: process.poll() is not None or waits_for_flock(lock), 120)
            assert process.poll() is None, process.communicate()[0].decode()
            (steplog,) = children(process.pid)
            os.kill(steplog, signal.SIGINT)
            output = process.communicate(timeout=60)[0].decode()
        finally:
            stop(process)
    assert process.returncode == 128 + signal.SIGINT, output
    assert_interrupted_in_one_line(output, "manage.py migrate")
    assert output.splitlines()[-1] == "entrypoint.migrate: stopped by SIGINT", output


def end_session(sid: int) -> None:
    """SIGKILL what is left of session ``sid`` (a loop that went on to its next command)."""
    for pid in in_session(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("command", ["manage.py", "bin/entrypoint"])
def test_ctrl_c_stops_a_shell_loop_running_a_command(tmp_path: Path, command: str) -> None:
    """`for t in 1 2; do manage.py migrate; done`: a terminal's Ctrl-C signals its foreground
    group, bash and the command. bash waits for the command, then stops only if it died of
    SIGINT; a command that exited 130 had bash go on to the next one (and wait again for the
    lock held here). Each command's end prints `exit N`: none may."""
    run = {
        "manage.py": f'"{sys.executable}" manage.py migrate --noinput',
        "bin/entrypoint": f'"{ENTRYPOINT}" migrate',
    }[command]
    script = f'for t in 1 2; do {run}; echo "exit $?"; done; echo after'
    with sqlite_migration_lock_held(tmp_path) as (env, lock):
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a terminal's foreground job
        )
        try:
            until(lambda: process.poll() is not None or waits_for_flock(lock), 120)
            assert process.poll() is None, process.communicate()[0].decode()
            os.killpg(process.pid, signal.SIGINT)
            assert process.stdout is not None
            output = ""
            for line in process.stdout:  # to its end, or to the first command's `exit N`
                output += line.decode()
                if line.startswith((b"exit ", b"after")):
                    break
            assert "exit " not in output and "after" not in output, output
            status = process.wait(timeout=60)
        finally:
            end_session(process.pid)
            stop(process)
    assert status == -signal.SIGINT, output  # bash died of it too, as a loop around it needs
    if command == "manage.py":
        assert_interrupted_in_one_line(output, "manage.py migrate")
    else:  # steplog got the group's INT and sh's TERM: it passes on the first it handles
        last = output.splitlines()[-1]
        assert re.fullmatch(r"entrypoint\.migrate: stopped by SIG(INT|TERM)", last), output


def _read_gunicorn_conf(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, **env: str
) -> str:
    """gunicorn.conf.py read in this process, as gunicorn reads it, to its refusal (exit 1):
    what it logged."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("FACIA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREPARED_BY, "")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    assert stopped.value.code == 1
    return caplog.text


@pytest.mark.parametrize(
    ("database", "timeouts", "shown"),
    [
        # A request waiting on a SQLite lock held elsewhere: its worker SIGKILLed at 3 s
        # ("WORKER TIMEOUT"), the connection dropped, where it would have been answered 503.
        ("sqlite", ("10", "3"), "DATABASE_TIMEOUT_S (10) must be below GUNICORN_TIMEOUT (3)"),
        ("sqlite", ("60", "60"), "DATABASE_TIMEOUT_S (60) must be below GUNICORN_TIMEOUT (60)"),
        ("sqlite", ("0", "20"), "DATABASE_TIMEOUT_S (0, SQLite's 20 s) must be below"),
        ("postgres", ("60", "60"), "DATABASE_TIMEOUT_S (60) must be below GUNICORN_TIMEOUT (60)"),
    ],
)
def test_a_database_wait_past_the_worker_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    database: str,
    timeouts: tuple[str, str],
    shown: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    if database == "postgres":
        url = "postgres://facia@127.0.0.1:5432/facia"
    database_s, worker_s = timeouts
    logged = _read_gunicorn_conf(
        monkeypatch,
        tmp_path,
        caplog,
        DATABASE_URL=url,
        DATABASE_TIMEOUT_S=database_s,
        GUNICORN_TIMEOUT=worker_s,
    )
    assert f"gunicorn: ImproperlyConfigured: {shown}" in logged
    assert "lower DATABASE_TIMEOUT_S or raise GUNICORN_TIMEOUT" in logged


def test_a_database_wait_within_the_worker_timeout_is_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite's 0 (20 s) under a 21 s worker timeout passes: the start stops only at a
    setting read after it, a bad TASK_WORKERS."""
    logged = _read_gunicorn_conf(
        monkeypatch,
        tmp_path,
        caplog,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DATABASE_TIMEOUT_S="0",
        GUNICORN_TIMEOUT="21",
        TASK_WORKERS="-1",
    )
    assert "gunicorn: ImproperlyConfigured: TASK_WORKERS='-1'" in logged
    assert "DATABASE_TIMEOUT_S" not in logged


def test_no_database_bound_on_postgresql_is_taken_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DATABASE_TIMEOUT_S=0 (with DATABASE_CLIENT_CHECK_S=0: no session setting sent, for a
    pooler that refuses startup options) was refused on PostgreSQL whatever GUNICORN_TIMEOUT
    was. It is read, and gunicorn's start (on_starting, given gunicorn's own error logger)
    warns once of what it costs."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("FACIA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREPARED_BY, "")
    monkeypatch.setenv("DATABASE_URL", "postgres://facia@127.0.0.1:5432/facia")
    monkeypatch.setenv("DATABASE_TIMEOUT_S", "0")
    monkeypatch.setenv("DATABASE_CLIENT_CHECK_S", "0")
    monkeypatch.setenv("GUNICORN_TIMEOUT", "60")
    conf = runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    assert conf["timeout"] == 60
    arbiter = SimpleNamespace(log=logging.getLogger("gunicorn.error"), START_CTX={})
    with caplog.at_level(logging.WARNING, "gunicorn.error"):
        conf["on_starting"](arbiter)
    warned = [r for r in caplog.records if "DATABASE_TIMEOUT_S=0" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    # not "unbounded": the connection attempt and TCP keepalives stay bounded
    assert (
        "no statement, lock or answer bound (connecting still times out after 10 s)"
        in warned[0].getMessage()
    )
    assert "GUNICORN_TIMEOUT (60 s)" in warned[0].getMessage()


@pytest.mark.parametrize("kind", ["a file", "under /proc"])
def test_a_metrics_dir_that_cannot_be_made_is_one_record_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """path.mkdir's OSError was a 20-line traceback naming no variable."""
    if kind == "a file":
        path = tmp_path / "metrics"
        path.write_text("")
    else:
        path = Path("/proc/facia-metrics")
    logged = _read_gunicorn_conf(monkeypatch, tmp_path, caplog, PROMETHEUS_MULTIPROC_DIR=str(path))
    reported = f"gunicorn: ImproperlyConfigured: cannot set up {path} (PROMETHEUS_MULTIPROC_DIR): "
    assert reported + "[Errno" in logged


def test_a_relative_metrics_dir_is_the_callers(tmp_path: Path) -> None:
    """As MODEL_DIR and FACIA_VAR_DIR: read after bin/entrypoint's cd, it named a directory in
    the checkout. Here it names one under a file of the caller's directory (manage.py, a file
    in the checkout too): the refusal names the caller's."""
    (tmp_path / "manage.py").write_text("")
    env = entrypoint_env(tmp_path, free_port(), MIGRATE_ON_START="0")
    env.update(MODEL_SOURCE=str(tmp_path / "absent"), PROMETHEUS_MULTIPROC_DIR="manage.py/metrics")
    done = subprocess.run(
        [str(ENTRYPOINT), "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["message"].startswith(
        f"gunicorn: ImproperlyConfigured: cannot set up {tmp_path}/manage.py/metrics "
        "(PROMETHEUS_MULTIPROC_DIR): "
    )


@pytest.mark.parametrize("value", ["0\r", " off\t"])
def test_migrate_on_start_is_trimmed_as_the_settings_trim_it(tmp_path: Path, value: str) -> None:
    """An env file written on Windows: MIGRATE_ON_START=0 and a carriage return. The settings
    read it as off; the script stripped only spaces and migrated."""
    env = entrypoint_env(tmp_path, 0, MIGRATE_ON_START=value, MODEL_SOURCE=str(tmp_path / "absent"))
    env["PORT"] = "http"  # nothing serves: the start stops at gunicorn's first setting
    done = run_entrypoint(env, "serve")
    assert done.returncode == 1
    messages = [json.loads(line)["message"] for line in done.stdout.splitlines()]
    assert messages[-1] == "gunicorn: ImproperlyConfigured: PORT='http': expected a whole number"
    database = tmp_path / "db.sqlite3"
    if database.exists():
        with sqlite3.connect(database) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master")}
        assert "django_migrations" not in tables
