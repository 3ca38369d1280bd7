"""Admin login throttle: failures per account and per client IP, decided before any hashing.

A password check is ~180 ms of PBKDF2 in a worker that also serves ``/liveness``. So a locked
account or client is refused from two counter reads, before the hasher runs, and at most
``LOGIN_CONCURRENT_HASHES`` password checks run at once on a host (non-blocking file locks
shared by every worker): a flood spread over many accounts and addresses still leaves the
other workers to ``/liveness``.
"""

import fcntl
import math
import os
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from guard import throttle
from guard.models import ACCOUNT_SCOPE
from guard.throttle import Window, client_ip, client_network

IP_SCOPE = "login-ip"
# The login-account counter's subject is an HMAC of the username under a key derived from
# SECRET_KEY with this salt (guard/migrations/0003 rewrote the rows stored before in clear).
ACCOUNT_KEY_SALT = "guard.login.account"
LOCKED_OUT = (
    "Too many failed login attempts for this account or from this address. "
    "Try again in {minutes} minutes."
)
BUSY = "The login service is busy. Try again in a few seconds."


def _window() -> Window:
    return Window.current(settings.LOGIN_LOCKOUT_S)


def account_subject(username: str) -> str:
    """The login-account counter's subject for ``username`` (NFKC, as Django stores a name):
    64 hex digits of an HMAC, never the name. Whatever is typed as the username of a failed
    login was stored and shown in clear, and people type their password there."""
    name = unicodedata.normalize("NFKC", username)
    return salted_hmac(ACCOUNT_KEY_SALT, name, algorithm="sha256").hexdigest()


def _subjects(request: HttpRequest | None, username: str) -> list[tuple[str, str, int]]:
    """(scope, subject, limit) of the account and of the client, for the enabled limits."""
    pairs = [(ACCOUNT_SCOPE, account_subject(username), settings.LOGIN_ACCOUNT_FAILURE_LIMIT)]
    if request is not None:
        client = client_network(client_ip(request))  # an IPv6 client's /64
        pairs.append((IP_SCOPE, client, settings.LOGIN_IP_FAILURE_LIMIT))
    return [(scope, subject, limit) for scope, subject, limit in pairs if limit > 0]


def _lockout_s(scope: str, subject: str, limit: int, window: Window) -> int:
    """Seconds until this subject may try again (0: now). Failures of this window and the
    previous one count, so a burst at a window's end earns no fresh allowance a moment later:
    a lockout lasts one to two windows."""
    current = throttle.hits(scope, subject, window)
    previous = throttle.hits(scope, subject, Window(window.start - window.seconds, window.seconds))
    if current >= limit:
        return window.retry_after() + window.seconds
    return window.retry_after() if current + previous >= limit else 0


def locked_out(request: HttpRequest | None, username: str) -> str | None:
    """The message to show when this account or client is locked out, else None."""
    window = _window()
    for scope, subject, limit in _subjects(request, username):
        if seconds := _lockout_s(scope, subject, limit, window):
            return LOCKED_OUT.format(minutes=math.ceil(seconds / 60))
    return None


def failed(request: HttpRequest | None, username: str) -> None:
    window = _window()
    for scope, subject, _ in _subjects(request, username):
        throttle.hit(scope, subject, window, bounded=True)


def succeeded(request: HttpRequest | None, username: str) -> None:
    """A successful login clears the account's and this client's failures."""
    delete = f"DELETE FROM {throttle.TABLE} WHERE scope = %s AND subject = %s"
    with connection.cursor() as cursor:
        for scope, subject, _ in _subjects(request, username):
            cursor.execute(delete, [scope, subject])


def _slot_paths() -> list[Path]:
    directory = Path(settings.VAR_DIR) / "login-slots"
    directory.mkdir(exist_ok=True)
    return [directory / str(i) for i in range(max(1, settings.LOGIN_CONCURRENT_HASHES))]


@contextmanager
def hashing_slot() -> Iterator[bool]:
    """True (and a slot held while inside) when a password check may run now, else False."""
    for path in _slot_paths():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield True
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        return
    yield False
