"""Django's SQLite backend, its database file private to the service's user.

The file holds the admins' password hashes (and the hash_ids' and session keys' digests).
SQLite creates it by the umask, 0644 under the usual 022, and gives its -wal and -shm files
the database's mode: in a var directory made 0755 (an operator's, a volume's) anyone on the
host could read them. Before SQLite opens it, the file is created 0600, or an existing one
and its companions lose their group and others' access.
"""

import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base

# What SQLite writes beside the database, each with the database file's mode.
COMPANIONS = ("-wal", "-shm", "-journal")


def private_file(path: Path) -> None:
    """Create ``path`` 0600 when missing, and take group and others' access off it and its
    companions. A directory missing or not writable, or a file of another user, is left to
    SQLite, whose failure the start reports naming the path (facia_site.startup)."""
    with suppress(OSError):
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    for file in (path, *(path.with_name(path.name + end) for end in COMPANIONS)):
        with suppress(OSError):  # absent, or not ours: as above
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def in_memory(name: str) -> bool:
    return name == ":memory:" or name.startswith("file:")  # a URI: Django's in-memory tests


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        name = str(conn_params["database"])
        if not in_memory(name):
            private_file(Path(name))
        return super().get_new_connection(conn_params)
