"""Database sessions that keep a digest of each session key, never the key itself.

The session cookie is a bearer token for the admin (issuing hash_ids, calibrating): Django's own
database backend stores it as the row's primary key, so a copy of the database (a backup, a
read-only SQL account) logged anyone in as any operator for up to two weeks. Here the row is
keyed by SHA-256 of the key, truncated to the column's 40 hex characters (160 bits), so the
cookie is checked as a hash_id is. Rows written before are not found: each operator logs in
once more."""

import hashlib
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

KEY_DIGEST_CHARS = 40  # django_session.session_key is a varchar(40)
SIGNED_IN_AT = "signed_in_at"  # epoch seconds of the login, in the session's data


def on_login(request: Any, **_: Any) -> None:
    """``user_logged_in``: the login's start, for ADMIN_LOGIN_MAX_S; and the rows of sessions
    already expired are deleted (Django leaves them to ``clearsessions``: one row per login
    stayed for ever), one DELETE per login; ``prune_checks`` deletes them too, daily."""
    request.session[SIGNED_IN_AT] = int(time.time())
    SessionStore.clear_expired()


def outlived(data: dict[str, Any]) -> bool:
    """Whether a login is older than ADMIN_LOGIN_MAX_S, however active it was."""
    started = data.get(SIGNED_IN_AT)
    return isinstance(started, int) and time.time() - started > settings.ADMIN_LOGIN_MAX_S


def stored_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode("utf-8")).hexdigest()[:KEY_DIGEST_CHARS]


class SessionStore(db.SessionStore):
    """Also the admin's time limits. A login older than ADMIN_LOGIN_MAX_S is deleted when
    read, its next page asking for the password. The idle timeout: a session a request reads
    and finds is saved again on the way out (SessionMiddleware saves a modified one), its
    expiry and its cookie's Max-Age moved on by SESSION_COOKIE_AGE (ADMIN_IDLE_TIMEOUT_S),
    one UPDATE of its row. Not
    SESSION_SAVE_EVERY_REQUEST: that also saves a session no request read, so a cookie naming
    no session became a new row, one per request on any path (/liveness included).

    A passive request (``passive``: a page's own poll, which its user did not make) is signed
    in by the session it reads but leaves it unsaved, its expiry where it was, unless it
    changed the session (``leave_expiry``)."""

    # (key, data) as ``load`` read them: what a passive request compares the session with.
    _as_read: tuple[str | None, dict[str, Any]] | None = None

    @classmethod
    def clear_expired(cls) -> int:  # type: ignore[override]  # Django's returns None: this one counts
        """Delete the rows of sessions already expired; how many (``manage.py prune_checks``
        reports them, each admin sign-in and Django's ``clearsessions`` run it too)."""
        deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
        return deleted

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = super().load()
        if outlived(data):
            self.delete()
            self._session_key = None
            return {}
        self.modified = self.modified or self.session_key is not None  # None: not found
        self._as_read = (self.session_key, dict(data))
        return data

    async def aload(self) -> dict[str, Any]:
        data: dict[str, Any] = await super().aload()
        if outlived(data):
            await self.adelete()
            self._session_key = None
            return {}
        self.modified = self.modified or self.session_key is not None
        self._as_read = (self.session_key, dict(data))
        return data

    def leave_expiry(self) -> None:
        """Not saved on the way out (its expiry and cookie left as they were) unless the
        request changed its data or its key (a message stored, a flush, a new key)."""
        if self._as_read is not None and self._as_read == (self.session_key, dict(self.items())):
            self.modified = False

    def _get_session_from_db(self) -> Any:
        if self.session_key is None:
            return None
        try:
            return self.model.objects.get(
                session_key=stored_key(self.session_key), expire_date__gt=timezone.now()
            )
        except (self.model.DoesNotExist, SuspiciousOperation):
            self._session_key = None
            return None

    async def _aget_session_from_db(self) -> Any:
        if self.session_key is None:
            return None
        try:
            return await self.model.objects.aget(
                session_key=stored_key(self.session_key), expire_date__gt=timezone.now()
            )
        except (self.model.DoesNotExist, SuspiciousOperation):
            self._session_key = None
            return None

    def exists(self, session_key: str) -> bool:
        return bool(self.model.objects.filter(session_key=stored_key(session_key)).exists())

    async def aexists(self, session_key: str) -> bool:
        return bool(await self.model.objects.filter(session_key=stored_key(session_key)).aexists())

    def create_model_instance(self, data: dict[str, Any]) -> Any:
        instance = super().create_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    async def acreate_model_instance(self, data: dict[str, Any]) -> Any:
        instance = await super().acreate_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    def delete(self, session_key: str | None = None) -> None:
        key = self.session_key if session_key is None else session_key
        if key is not None:
            self.model.objects.filter(session_key=stored_key(key)).delete()

    async def adelete(self, session_key: str | None = None) -> None:
        key = self.session_key if session_key is None else session_key
        if key is not None:
            await self.model.objects.filter(session_key=stored_key(key)).adelete()


def passive(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``view``'s requests leave the admin's idle timeout where it was (``leave_expiry``), its
    refusals too: a page's script polling every few seconds would keep an operator who left
    it signed in until ADMIN_LOGIN_MAX_S (12 hours), not ADMIN_IDLE_TIMEOUT_S (15 minutes)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        finally:
            session = getattr(request, "session", None)
            if isinstance(session, SessionStore):
                session.leave_expiry()

    return wrapped
