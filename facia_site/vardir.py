"""The service's own directory (``FACIA_VAR_DIR``, default ``var/``) and its secret key.

Settings only compute paths and read the key (``SECRET_KEY``, else the key file); nothing
is created when they are imported. ``prepare()`` is the one idempotent step that creates the
directory, its static root and, without ``SECRET_KEY``, the key file (0600): manage.py and
the gunicorn configuration run it before Django starts, so bin/entrypoint, ``make serve``,
``make test``, the image and the Kubernetes Job all go through it.

    python -m facia_site.vardir     the same step on its own
"""

import logging
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from facia_site.env import env_bool, env_path, env_secret

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"
log = logging.getLogger(__name__)


def var_dir() -> Path:
    """FACIA_VAR_DIR; unset or blank is ``var/`` (blank read as it is would be the current
    directory: the key file and the database written beside manage.py)."""
    return env_path("FACIA_VAR_DIR", BASE_DIR / "var")


def read_secret_key(path: Path) -> str:
    """SECRET_KEY from the environment, else from ``path``; never creates it. With
    DJANGO_SECURE on (production), a weak key stops the start (strong_enough)."""
    if key := env_secret("SECRET_KEY"):
        return strong_enough(key, "SECRET_KEY")
    try:
        return strong_enough(_key_in(path), f"The key file {path}")
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"No SECRET_KEY and no key file {path}: set SECRET_KEY, or run the set-up step "
            "that creates it (python -m facia_site.vardir; manage.py and bin/entrypoint "
            "run it)."
        ) from None


# Django's own rule for a production key (check W009, which `manage.py check --deploy` alone
# runs, and only warns): DJANGO_SECURE=1 SECRET_KEY=abc signed admin sessions with a key
# anyone could guess. A generated key (token_urlsafe(50), 67 characters) passes.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
INSECURE_PREFIX = "django-insecure"


def strong_enough(key: str, source: str) -> str:
    """``key``, unless DJANGO_SECURE is on and it is weak by Django's rule: shorter than 50
    characters, fewer than 5 different ones, or startproject's ``django-insecure`` prefix."""
    if not env_bool("DJANGO_SECURE"):
        return key
    if (
        len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE
        or key.startswith(INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            f"{source} is too weak for DJANGO_SECURE=1 ({len(key)} characters, "
            f"{len(set(key))} different): use at least {SECRET_KEY_MIN_LENGTH} random "
            f"characters of {SECRET_KEY_MIN_UNIQUE} or more kinds, not starting "
            f"{INSECURE_PREFIX!r}, e.g. python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'"
        )
    return key


def _key_in(path: Path) -> str:
    """The key file's key. An empty one (touched by hand, or cut short by a power loss before
    its data reached the disk) let the server start and serve checks, with every signed value
    (admin sessions and logins, manage.py commands) failing: "The SECRET_KEY setting must not
    be empty"."""
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(
            f"The key file {path} is empty: delete it to have a new key generated (signed-in "
            "admin sessions end), or set SECRET_KEY."
        )
    return key


def load_secret_key(path: Path) -> str:
    """Return SECRET_KEY from the environment, or from ``path``, creating it (0600) once."""
    if key := env_secret("SECRET_KEY"):
        return key
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
                handle.flush()
                os.fsync(handle.fileno())  # on disk before its name is: never an empty key file
            # link() fails if another process won the race; its key is then the one we use.
            with suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()  # also when the write failed (a full disk)
    else:
        _made_private(path)
    return _key_in(path)


def _made_private(path: Path) -> None:
    """A key file others may read made 0600, as the database's files are when a process
    connects (facia_site.sqlite3): one restored with ``cp`` under umask 022 stayed 0644 in a
    0755 directory, anyone on the host able to sign admin sessions with it. Where it cannot
    be changed (another owner, a read-only mount), a warning says so."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    from facia_site.startup import ensure_logging

    ensure_logging()  # before Django's: the record in the service's format (JSON by default)
    try:
        path.chmod(0o600)
    except OSError as exc:
        log.warning("key file %s is readable by others (%o) and stays so: %s", path, mode, exc)
    else:
        log.warning("key file %s was readable by others (%o): made 0600", path, mode)


def prepare(directory: Path | None = None) -> Path:
    """Create the var directory (0700: the SQLite database holds the admins' password hashes;
    the container image's is 0750; the database's files are 0600 in any directory:
    facia_site.sqlite3), its static root and (without SECRET_KEY) the key file."""
    directory = var_dir() if directory is None else directory
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (directory / "static").mkdir(exist_ok=True)
        load_secret_key(directory / SECRET_KEY_FILE)
    except OSError as exc:  # read-only, full: name the directory (ENOSPC names no file)
        raise ImproperlyConfigured(f"cannot set up {directory} (FACIA_VAR_DIR): {exc}") from exc
    return directory


if __name__ == "__main__":
    prepare()
