"""A consistent copy of the SQLite database while the service runs (``manage.py backup``).

``cp db.sqlite3`` is not one: the service runs SQLite in WAL mode, so the main file holds only
what the last checkpoint moved there. 20 such copies under /liveness traffic all passed
``PRAGMA integrity_check``, yet each lacked checks answered 201 before it began (up to 188),
and the first held no tenant at all (``python -m bench.sqlite_copy``). SQLite's online backup
API copies the database as one read transaction sees it, WAL included, while the service's
workers go on writing."""

import os
import sqlite3
import tempfile
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
    and make it durable. The copy is written to a temporary file beside ``target``
    (``create_partial``) and linked to ``target`` only once checked and synced: written in
    place, a backup killed part-way (SIGKILL after 4 of 45 MB) left ``target`` and its
    -journal, which rolled back to an empty database that PRAGMA integrity_check calls ok, a
    dated backup restoring a service with no table. On any failure or signal the temporary
    file and its -journal are removed (a full disk left a -journal of 1024 bytes beside the
    removed copy)."""
    target = target.absolute()
    if os.path.lexists(target):
        raise BackupError(exists(target))
    partial = create_partial(target)
    linked = False
    try:
        with closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)  # all pages in one step: one snapshot, whatever is written
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, without -wal and -shm
            require_integrity(copy, target)
            found = counts(copy)
        sync(partial)
        link(partial, target)
        linked = True
        partial.unlink()
        sync_folder(target.parent)
    except sqlite3.Error as exc:  # a full disk, an I/O error
        remove(partial)
        raise BackupError(f"the copy into {target} failed ({exc}); it was removed") from exc
    except BaseException:
        remove(partial)
        if linked:  # the command fails (a signal): no backup it did not say it wrote
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


def exists(target: Path) -> str:
    return f"{target} exists: a backup never replaces a file"


# The temporary copy's name, beside the backup: a dot file, so that `ls` of a backup folder
# lists only backups.
PARTIAL_PREFIX = ".facia-backup-"


def create_partial(target: Path) -> Path:
    """Create the empty file the copy for ``target`` is written to, beside it (a link to
    ``target`` needs the same file system), named ``PARTIAL_PREFIX`` and a random suffix,
    0600 (the database holds the admins' password hashes), O_EXCL; or say why not:
    ``target``'s folder does not exist, or it cannot be written. The name is short whatever
    ``target``'s is: ``target``'s name and a suffix (17 characters, 25 with SQLite's
    ``-journal``) passed the 255 bytes a file name may have for a ``target`` name of 231
    bytes or more, and such a backup failed."""
    try:
        handle, name = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=target.parent)
    except FileNotFoundError:
        raise BackupError(f"the directory {target.parent} does not exist") from None
    except OSError as exc:
        raise BackupError(f"cannot create {target}: {exc.strerror}") from None
    os.close(handle)
    return Path(name)


def link(partial: Path, target: Path) -> None:
    """Give the checked copy its name: a link, which fails where ``target`` exists (made
    since the command began), where a rename would replace it."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise BackupError(exists(target)) from None
    except OSError as exc:  # a file system without hard links
        raise BackupError(f"cannot create {target}: {exc.strerror}") from None


def remove(partial: Path) -> None:
    """The temporary copy and what SQLite may have left beside it, as far as it can: it runs
    while an error is handled, which must be the one said, not one of the clean-up."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        with suppress(OSError):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)


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


def sync(path: Path) -> None:
    """The copy on disk before it gets its name."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def sync_folder(folder: Path) -> None:
    """The copy's name on disk before the command says it wrote it."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        with suppress(OSError):  # a filesystem that cannot sync a directory still has the file
            os.fsync(handle)
    finally:
        os.close(handle)
