"""A consistent copy of the SQLite database while the service runs (``manage.py backup``).

``cp db.sqlite3`` is not one: the service runs SQLite in WAL mode, so the main file holds only
what the last checkpoint moved there. 20 such copies under /liveness traffic all passed
``PRAGMA integrity_check``, yet each lacked checks answered 201 before it began (up to 188),
and the first held no tenant at all (``python -m bench.sqlite_copy``). SQLite's online backup
API copies the database as one read transaction sees it, WAL included, while the service's
workers go on writing."""

import os
import sqlite3
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path

from accounts.models import Tenant
from liveness.models import LivenessCheck


class BackupError(Exception):
    """A backup not written, said in one line for the operator."""


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    tenants: int
    units_used: int
    checks: int

    def __str__(self) -> str:
        return (
            f"wrote {self.path} ({self.size} bytes; integrity ok; {self.tenants} tenant(s), "
            f"{self.units_used} unit(s) used, {self.checks} check record(s))"
        )


def backup_sqlite(source: sqlite3.Connection, target: Path) -> Written:
    """Copy ``source`` into the new file ``target`` (never an existing one), check the copy
    and make it durable; on any failure the partial file is removed."""
    target = target.absolute()
    create_new(target)
    try:
        with closing(sqlite3.connect(target)) as copy:
            source.backup(copy)  # all pages in one step: one snapshot, whatever is written
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, without -wal and -shm
            require_integrity(copy, target)
            found = counts(copy)
        durable(target)
    except sqlite3.Error as exc:  # a full disk, an I/O error
        target.unlink(missing_ok=True)
        raise BackupError(f"the copy into {target} failed ({exc}); it was removed") from exc
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Written(target, target.stat().st_size, *found)


def backup_file(path: str) -> Path:
    """The file ``manage.py backup PATH`` creates. PATH ending in a slash names a directory
    (``/backups/new/``): missing, it is refused as a missing parent is (read as a path, the
    slash dropped, it would be the name of the file written); a directory that exists is named
    as one, not as a file the backup would replace."""
    target = Path(path).absolute()
    if path.endswith(("/", os.sep)) and not target.is_dir():
        raise BackupError(f"the directory {target} does not exist")
    if target.is_dir():
        raise BackupError(
            f"{target} is a directory: name the file to create in it, e.g. "
            f"{target / 'facia.sqlite3'}"
        )
    return target


def create_new(target: Path) -> None:
    """Create ``target`` empty (0600: the database holds the admins' password hashes), or
    say why not: it exists, its folder does not, or it cannot be written."""
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(f"{target} exists: a backup never replaces a file") from None
    except FileNotFoundError:
        raise BackupError(f"the directory {target.parent} does not exist") from None
    except OSError as exc:
        raise BackupError(f"cannot create {target}: {exc.strerror}") from None


def require_integrity(copy: sqlite3.Connection, target: Path) -> None:
    found = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    if found != ["ok"]:
        raise BackupError(
            f"the copy fails PRAGMA integrity_check ({len(found)} problem(s), first: "
            f"{found[0]}), so the database itself is damaged; {target} was removed"
        )


def counts(copy: sqlite3.Connection) -> tuple[int, int, int]:
    """Tenants, units used by them all, and check records in the copy."""
    tenants, used = copy.execute(
        f"SELECT count(*), coalesce(sum(requests_used), 0) FROM {Tenant._meta.db_table}"
    ).fetchone()
    (checks,) = copy.execute(f"SELECT count(*) FROM {LivenessCheck._meta.db_table}").fetchone()
    return int(tenants), int(used), int(checks)


def durable(target: Path) -> None:
    """The copy and its name on disk before the command says it wrote them."""
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        with suppress(OSError):  # a filesystem that cannot sync a directory still has the file
            os.fsync(folder)
    finally:
        os.close(folder)
