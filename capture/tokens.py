"""Bearer-token authentication of a capture session (the browser's calls)."""

import hmac
import uuid

from django.http import HttpRequest
from django.utils import timezone

from capture.models import CaptureSession, token_digest
from guard import throttle
from liveness.answers import Rejected, Rejection

MAX_TOKEN_LENGTH = 128


def _rejected(code: str) -> Rejected:
    return Rejected(Rejection(code))


def bearer_token(request: HttpRequest) -> str | None:
    header: str = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _matches(session: CaptureSession, token: str) -> bool:
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return False
    return hmac.compare_digest(session.token_digest, token_digest(token))


def session_for_token(request: HttpRequest, session_id: uuid.UUID) -> CaptureSession:
    """The session ``session_id`` when the request's bearer token is its own and still
    valid; otherwise Rejected (429 throttled, 404 unknown, 401 missing, invalid or
    expired)."""
    client = throttle.client_ip(request)
    if (blocked := throttle.auth_blocked(client)) is not None:
        raise Rejected(Rejection("auth_throttled", retry_after=blocked.retry_after()))
    found = CaptureSession.objects.select_related("tenant", "credential").filter(pk=session_id)
    session = found.first()
    if session is None:
        throttle.auth_failed(client)
        raise _rejected("unknown_session")
    token = bearer_token(request)
    if token is None:
        raise _rejected("token_missing")
    # A token is bound to its session (and so to its tenant): another session's token,
    # even of the same tenant, never matches this digest.
    if not _matches(session, token):
        throttle.auth_failed(client)
        raise _rejected("token_invalid")
    if session.expires_at <= timezone.now():
        raise _rejected("token_expired")
    # A valid token, not a guess: no failure counted. A deactivated tenant's counted one per
    # browser (the component stops at a 401): 20 of its users behind one address
    # (AUTH_FAILURE_LIMIT) left that address 429 on every hash_id and token call for a window.
    if not session.tenant.is_active or not credential_active(session):
        raise _rejected("token_invalid")
    return session


def credential_active(session: CaptureSession) -> bool:
    """Whether the hash_id that opened ``session`` is still unrevoked: revoking it ends its
    open sessions at their next call."""
    credential = session.credential
    return credential is not None and credential.revoked_at is None
