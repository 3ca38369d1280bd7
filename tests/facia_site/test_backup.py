"""``manage.py backup PATH`` (bin/entrypoint manage backup): a checked copy of the SQLite
database in a new file, one line saying what it wrote; an operator's mistake is one line and
exit status 1, with nothing written; for PostgreSQL, the pg_dump to run instead. The copy
under /liveness traffic: tests/system/test_backup.py."""

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import scratch_database, skip_or_fail
from tests.servers.disk import small_tmpfs
from tests.servers.entrypoint import run_entrypoint
from tests.servers.processes import manage, until
from tests.servers.readonly import read_only

WROTE = re.compile(
    r"backup: wrote (?P<path>\S+) \((?P<size>\d+) bytes; integrity ok; (?P<tenants>\d+) "
    r"tenant\(s\), (?P<used>\d+) unit\(s\) used, (?P<checks>\d+) check record\(s\)\)"
)
# Units and check records as /liveness writes them (one transaction, as liveness.checks).
CHECKS = """
from django.db import transaction
from accounts.models import Tenant
from liveness.models import LivenessCheck
tenant = Tenant.objects.get(name="acme")
for i in range(3):
    with transaction.atomic():
        assert Tenant.reserve_unit(tenant.pk)
        LivenessCheck.insert(tenant=tenant, is_live=True, score=0.9, latency_ms=40.0)
LivenessCheck.insert(tenant=tenant, latency_ms=9.0, refused_code="face_too_small")
"""


def grown(var: Path, megabytes: int) -> None:
    """The database in ``var`` made ``megabytes`` larger (a table of random blobs)."""
    with closing(sqlite3.connect(var / "db.sqlite3")) as db, db:
        db.execute("CREATE TABLE filler (data BLOB)")
        db.executemany(
            "INSERT INTO filler VALUES (randomblob(?))", [(1 << 20,) for _ in range(megabytes)]
        )


def service(var: Path) -> dict[str, str]:
    """The environment of a service whose SQLite database is in ``var``, migrated."""
    env = {**os.environ, "FACIA_VAR_DIR": str(var)}
    env.pop("DATABASE_URL", None)
    manage(env, "migrate", "--noinput", "-v0")
    return env


def backup(env: dict[str, str], path: Path, prefix: list[str] | None = None) -> tuple[int, str]:
    return backup_to(env, str(path), prefix)


def backup_to(env: dict[str, str], path: str, prefix: list[str] | None = None) -> tuple[int, str]:
    """``bin/entrypoint manage backup PATH``, PATH as given (a trailing slash kept)."""
    done = run_entrypoint(env, "manage", "backup", path, prefix=prefix or [])
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow  # four manage.py processes
def test_a_backup_is_a_checked_copy_said_in_one_line(tmp_path: Path) -> None:
    env = service(tmp_path / "var")
    manage(env, "create_tenant", "acme", "--limit", "10")
    manage(env, "shell", "-c", CHECKS)
    target = tmp_path / "backups" / "facia.sqlite3"
    target.parent.mkdir()
    status, output = backup(env, target)
    assert status == 0, output
    found = WROTE.fullmatch(output.strip())
    assert found is not None, output
    assert (found["path"], found["tenants"], found["used"], found["checks"]) == (
        str(target),
        "1",
        "3",
        "4",
    )
    assert int(found["size"]) == target.stat().st_size
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds the admins' password hashes
    assert sorted(p.name for p in target.parent.iterdir()) == ["facia.sqlite3"]  # no -wal
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("SELECT name, requests_used FROM accounts_tenant").fetchall() == [
            ("acme", 3)
        ]


@pytest.mark.slow  # three manage.py processes
def test_a_backup_holds_what_is_still_only_in_the_wal(tmp_path: Path) -> None:
    """A worker's open connection keeps the WAL: a commit not yet checkpointed into
    db.sqlite3 (every commit since the last checkpoint; cp of db.sqlite3 missed them all) is
    in the backup."""
    var = tmp_path / "var"
    env = service(var)
    manage(env, "create_tenant", "checkpointed", "--limit", "10")
    with closing(sqlite3.connect(var / "db.sqlite3")) as worker:
        worker.execute("PRAGMA wal_autocheckpoint=0")  # nothing moves into the main file
        with worker:
            worker.execute("UPDATE accounts_tenant SET requests_used = 7")
        assert worker.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        status, output = backup(env, tmp_path / "facia.sqlite3")
        assert status == 0, output
    with closing(sqlite3.connect(tmp_path / "facia.sqlite3")) as copy:
        assert copy.execute("SELECT requests_used FROM accounts_tenant").fetchall() == [(7,)]


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    env = service(tmp_path / "var")
    target = tmp_path / "facia.sqlite3"
    target.write_text("last week's backup")
    status, output = backup(env, target)
    assert (status, output) == (
        1,
        f"CommandError: {target} exists: a backup never replaces a file\n",
    )
    assert target.read_text() == "last week's backup"


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    env = service(tmp_path / "var")
    status, output = backup(env, tmp_path / "nowhere" / "facia.sqlite3")
    assert (status, output) == (
        1,
        f"CommandError: the directory {tmp_path / 'nowhere'} does not exist\n",
    )


def test_a_path_ending_in_a_slash_is_a_directory(tmp_path: Path) -> None:
    """`backup /backups/new/` with no such directory wrote a file named `new`."""
    env = service(tmp_path / "var")
    status, output = backup_to(env, f"{tmp_path / 'new'}/")
    assert (status, output) == (
        1,
        f"CommandError: the directory {tmp_path / 'new'} does not exist\n",
    )
    assert not (tmp_path / "new").exists()
    (tmp_path / "new").mkdir()
    for given in (f"{tmp_path / 'new'}/", str(tmp_path / "new")):
        status, output = backup_to(env, given)
        assert (status, output) == (
            1,
            f"CommandError: {tmp_path / 'new'} is a directory: name the file to create in it, "
            f"e.g. {tmp_path / 'new' / 'facia.sqlite3'}\n",
        )
    assert list((tmp_path / "new").iterdir()) == []


def test_a_var_directory_without_a_database_is_left_so(tmp_path: Path) -> None:
    """A mistyped FACIA_VAR_DIR: named, and no empty database made there."""
    env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path / "mistyped")}
    env.pop("DATABASE_URL", None)
    status, output = backup(env, tmp_path / "facia.sqlite3")
    database = tmp_path / "mistyped" / "db.sqlite3"
    assert (status, output) == (
        1,
        f"CommandError: no database at {database}: FACIA_VAR_DIR or DATABASE_URL names another "
        "place\n",
    )
    assert not database.exists() and not (tmp_path / "facia.sqlite3").exists()


def test_a_database_not_migrated_is_named(tmp_path: Path) -> None:
    database = tmp_path / "empty.sqlite3"
    sqlite3.connect(database).close()  # an empty file, as a mistyped DATABASE_URL makes
    env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{database}"}
    status, output = backup(env, tmp_path / "facia.sqlite3")
    assert (status, output) == (
        1,
        f"CommandError: {database} is not migrated: run bin/entrypoint migrate first\n",
    )
    assert not (tmp_path / "facia.sqlite3").exists()


def test_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    env = service(tmp_path / "var")
    folder = tmp_path / "mounted"
    folder.mkdir()
    status, output = backup(env, folder / "facia.sqlite3", read_only(folder))
    assert (status, output) == (
        1,
        f"CommandError: cannot create {folder / 'facia.sqlite3'}: Read-only file system\n",
    )
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("grown_mb", "disk"),
    [
        (0, "64k"),
        # A copy that fills the disk part-way leaves SQLite's rollback journal beside it
        # (1024 bytes, a 4.6 MB database on a 1 MB disk): removed with the copy.
        (5, "1m"),
    ],
)
def test_a_full_disk_leaves_nothing_behind(tmp_path: Path, grown_mb: int, disk: str) -> None:
    env = service(tmp_path / "var")
    if grown_mb:
        grown(tmp_path / "var", grown_mb)
    with small_tmpfs(tmp_path / "small", disk) as why_not:
        if why_not:
            skip_or_fail(why_not)
        target = tmp_path / "small" / "facia.sqlite3"
        status, output = backup(env, target)
        assert (status, output) == (
            1,
            f"CommandError: the copy into {target} failed (database or disk is full); "
            "it was removed\n",
        )
        assert list(target.parent.iterdir()) == []


def test_a_backup_killed_part_way_is_never_at_its_path(tmp_path: Path) -> None:
    """SIGKILL while the pages are copied (nothing can clean up): the path named is not there.
    Written in place, the copy and its -journal were, and the journal rolled the copy back to
    an empty database that PRAGMA integrity_check calls ok, a dated backup of no table. What
    is left is a file named as partial (a clean-up's to delete)."""
    env = service(tmp_path / "var")
    grown(tmp_path / "var", 64)
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "facia.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "backup", str(target)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: any(p.stat().st_size > 0 for p in folder.iterdir()), every=0.001)
    finally:
        process.kill()
        process.wait()
    left = sorted(p.name for p in folder.iterdir())
    assert "facia.sqlite3" not in left, left
    assert left and all(name.startswith(".facia-backup-") for name in left), left


@pytest.mark.parametrize("length", [235, 245, 255])
def test_a_long_file_name_is_backed_up(tmp_path: Path, length: int) -> None:
    """A temporary copy named after the backup, with a suffix (17 characters, and SQLite's
    ``-journal`` beside it), passed the 255 bytes a file name may have: 235 characters ended
    in "OSError: File name too long" for the journal, 245 in "cannot create"."""
    env = service(tmp_path / "var")
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / ("b" * length)
    status, output = backup(env, target)
    assert status == 0, output
    found = WROTE.fullmatch(output.strip())
    assert found is not None, output
    assert [p.name for p in folder.iterdir()] == [target.name]


def test_a_database_not_fully_migrated_is_named(tmp_path: Path) -> None:
    """Only some apps migrated: named so, not a copy failed on "no such table"."""
    var = tmp_path / "var"
    env = {**os.environ, "FACIA_VAR_DIR": str(var)}
    env.pop("DATABASE_URL", None)
    manage(env, "migrate", "accounts", "--noinput", "-v0")
    status, output = backup(env, tmp_path / "facia.sqlite3")
    assert (status, output) == (
        1,
        f"CommandError: {var / 'db.sqlite3'} is not fully migrated: run bin/entrypoint "
        "migrate first\n",
    )
    assert not (tmp_path / "facia.sqlite3").exists()


@pytest.mark.slow  # four manage.py processes
def test_a_damaged_database_gives_no_backup(tmp_path: Path) -> None:
    """The copy is the database's pages as they are: an index that no longer matches its
    table is found in the copy, which is then removed."""
    env = service(tmp_path / "var")
    for name in ("acme", "beta"):
        manage(env, "create_tenant", name)
    with sqlite3.connect(tmp_path / "var" / "db.sqlite3") as db:
        db.execute("CREATE INDEX damaged ON accounts_tenant (name)")
        db.execute("PRAGMA writable_schema=ON")
        db.execute(
            "UPDATE sqlite_schema SET sql = 'CREATE INDEX damaged ON accounts_tenant (threshold)'"
            " WHERE name = 'damaged'"
        )
    target = tmp_path / "facia.sqlite3"
    status, output = backup(env, target)
    assert status == 1
    assert output.startswith("CommandError: the copy fails PRAGMA integrity_check (")
    assert output.endswith(f"so the database itself is damaged; {target} was removed\n")
    assert "Traceback" not in output
    assert not target.exists()


RESTORED = """
from accounts.models import HashId, Tenant
tenant = HashId.tenant_for({hash_id!r})
print(tenant.name, tenant.requests_used, tenant.checks.filter(refused_code="").count(),
    tenant.checks.count())
"""


@pytest.mark.slow  # five manage.py processes, pg_dump and pg_restore
def test_a_postgresql_dump_restores_with_every_unit(tmp_path: Path) -> None:
    """The commands of docs/operator/deployment.md: pg_dump of the service's database, pg_restore
    into an empty one, migrate; the hash_id authenticates, its units are its checks."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        skip_or_fail("no pg_dump and pg_restore here (Debian's postgresql-client)")
    dump = tmp_path / "facia.dump"
    with scratch_database("backup") as url:
        env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "DATABASE_URL": url}
        manage(env, "migrate", "--noinput", "-v0")
        hash_id = manage(env, "create_tenant", "acme", "--limit", "10").strip().splitlines()[-1]
        manage(env, "shell", "-c", CHECKS)
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", url], check=True)
    with scratch_database("restored") as url:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={url}", str(dump)], check=True)
        env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "DATABASE_URL": url}
        manage(env, "migrate", "--noinput", "-v0")
        found = manage(env, "shell", "-c", RESTORED.format(hash_id=hash_id))
    assert found.splitlines()[-1] == "acme 3 3 4"


def test_postgresql_is_backed_up_with_pg_dump(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FACIA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://facia:pw-not-shown@db.example:5432/facia",
    }
    status, output = backup(env, tmp_path / "facia.sqlite3")
    assert (status, output) == (
        1,
        "CommandError: the database is PostgreSQL (postgresql://facia@db.example:5432/facia): "
        "back it up with pg_dump, which takes one consistent snapshot while the service runs, "
        "e.g. pg_dump --format=custom --file=facia.dump DATABASE_URL (docs: Backup, restore "
        "and upgrade)\n",
    )
    assert not (tmp_path / "facia.sqlite3").exists()


@pytest.mark.parametrize("name", ["db.sqlite3", "secret_key"])
def test_the_live_files_are_never_the_target(tmp_path: Path, name: str) -> None:
    """The database itself, or the key file beside it, given by mistake: refused, unchanged."""
    var = tmp_path / "var"
    env = service(var)
    before = (var / name).read_bytes()
    status, output = backup(env, var / name)
    assert (status, output) == (
        1,
        f"CommandError: {var / name} exists: a backup never replaces a file\n",
    )
    assert (var / name).read_bytes() == before
