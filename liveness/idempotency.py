"""Idempotent retries of POST /liveness: the ``Idempotency-Key`` header (IETF draft "The
Idempotency-Key HTTP Header Field", as Stripe and Adyen use it).

A request that sends a key is looked up (one indexed query on the tenant and the key's digest)
after authentication and the tenant's rate, before its quota and any decoding:

- an answer stored for the key and the same body digest: sent again, ``Idempotent-Replayed:
  true``, no unit, no record, no model;
- the same key with another body: 422 ``idempotency_key_reused`` (the draft's answer);
- the first request still being judged: 409 ``idempotency_key_in_use``, ``Retry-After: 1``;
- otherwise the request claims the key (a row without an answer) and is judged as any other;
  the answer is stored in the transaction that takes the unit and writes the check record
  (liveness.checks.record), so a committed unit always has its answer and a rolled-back one
  none; the response rendered to store it is the one sent (``Attempt.answer``). Only the
  answers that write a record are stored: 201 verdicts and the quality gates' 422s. Any other
  answer (400, 429, 503, 500) releases the claim: a retry is judged afresh.

Keys and bodies are kept only as SHA-256 digests, per tenant, for IDEMPOTENCY_KEY_TTL_S; an
older one counts as absent and prune_checks deletes it.
"""

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Tenant
from liveness import answers
from liveness.answers import Outcome, Rejected, Rejection
from liveness.checks import Keep
from liveness.models import IdempotentAnswer

HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# The answer headers stored with the body (a verdict's); X-Request-ID is the retry's own.
KEPT_HEADERS = ("X-Liveness-Profile", "X-Liveness-Capture")
# A claim older than this belongs to no living request: gunicorn kills a worker after
# GUNICORN_TIMEOUT (60 s by default), and a check takes 0.1-0.3 s. A later retry takes it over;
# the old request, were it still alive, could no longer store its answer (its claim is gone)
# and rolls its unit back.
CLAIM_LEASE_S = 120
# A check takes 0.1-0.3 s on a CPU (docs/evaluator/performance.md): a second is enough to wait.
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class Key:
    """A request's key and body, as digests."""

    digest: str
    body_digest: str

    @classmethod
    def of(cls, key: str, body: bytes) -> "Key":
        """The digests of a checked ``key`` and its request's body, for an authenticated
        tenant: SHA-256 of a 16 MB body costs 21 ms, a third more than parsing it (58 ms),
        which an unknown hash_id could otherwise have the service spend."""
        return cls(_sha256(key.encode("ascii")), _sha256(body))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_of(request: HttpRequest) -> str:
    """The request's Idempotency-Key (it has one), checked: 400 unless 1-255 printable ASCII
    without a comma. The WSGI environ holds one value per header name: gunicorn (as RFC 9110
    5.3 lets a recipient) joins repeated fields with commas, so two keys would be taken as
    one key "k1,k2"; a comma is refused as the one mark of a second key. Its body is not
    hashed here, before authentication (``Key.of``)."""
    value: str = request.META[HEADER]
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not (value.isascii() and value.isprintable()):
        raise Rejected(Rejection("idempotency_key_invalid"))
    if "," in value:
        raise Rejected(Rejection("idempotency_key_repeated"))
    return value


def _lapsed(row: IdempotentAnswer) -> bool:
    """Whether ``row`` counts as absent: past its retention, or a claim left by a dead request."""
    age = timezone.now() - row.created_at
    if age > timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S):
        return True
    return row.status is None and age > timedelta(seconds=CLAIM_LEASE_S)


def in_use() -> Rejected:
    return Rejected(Rejection("idempotency_key_in_use", retry_after=RETRY_AFTER_S))


class Attempt:
    """One request's use of a key: the earlier answer, or a claim on the key for this one."""

    def __init__(self, tenant: Tenant, key: Key) -> None:
        self.tenant = tenant
        self.key = key
        self.token = uuid.uuid4().hex
        # The outcome whose answer this request stored, and that answer's response.
        self.kept: tuple[Outcome, HttpResponse] | None = None
        self.row = IdempotentAnswer.objects.filter(
            tenant_id=tenant.pk, key_digest=key.digest
        ).first()

    def earlier_answer(self) -> HttpResponse | None:
        """The stored answer to send again; None when this request is to be judged."""
        row = self.row
        if row is None or _lapsed(row):
            return None
        if row.body_digest != self.key.body_digest:
            raise Rejected(Rejection("idempotency_key_reused"))
        if row.status is None:
            raise in_use()
        response = HttpResponse(row.answer, status=row.status, content_type="application/json")
        for name, value in row.headers.items():
            response[name] = value
        response[REPLAYED] = "true"
        return response

    @contextmanager
    def claimed(self) -> Iterator[Keep]:
        """The key claimed for this request (409 if another one claimed it first), released
        unless its answer was stored; yields what stores the answer."""
        self._claim()
        failed = True
        try:
            yield self._keep
            failed = False
        except Superseded:
            raise in_use() from None
        finally:
            if failed or self.kept is None:  # kept, but maybe rolled back since
                self._release()

    def _claim(self) -> None:
        values: dict[str, object] = {
            "claim": self.token,
            "body_digest": self.key.body_digest,
            "status": None,
            "answer": "",
            "headers": {},
            "created_at": timezone.now(),
        }
        if self.row is not None:  # lapsed: taken over, unless another request did first
            rows = IdempotentAnswer.objects.filter(pk=self.row.pk, claim=self.row.claim)
            if rows.update(**values) != 1:
                raise self._beaten()
            return
        try:
            with transaction.atomic():
                IdempotentAnswer.objects.create(
                    tenant_id=self.tenant.pk, key_digest=self.key.digest, **values
                )
        except IntegrityError:  # a concurrent request with the same key claimed it first
            raise self._beaten() from None

    def _beaten(self) -> Rejected:
        """The answer when a concurrent request claimed the key first: 422 if it came with
        another body, as it gets once that claim is seen (answered 409, two bodies sent at
        once with one key would be told to retry in 2 of 6 races on PostgreSQL, only to get
        422)."""
        row = IdempotentAnswer.objects.filter(
            tenant_id=self.tenant.pk, key_digest=self.key.digest
        ).first()
        if row is not None and row.body_digest != self.key.body_digest:
            return Rejected(Rejection("idempotency_key_reused"))
        if row is None and not Tenant.objects.filter(pk=self.tenant.pk).exists():
            # No row: the claim failed its tenant's foreign key, the tenant deleted since it
            # was authenticated: 401 now, not a 409 "retry" that could only get 401.
            # Counted with no tenant: its counts were deleted with it (forget_refusals).
            return answers.counted(Rejection("invalid_credentials"), None)
        return in_use()

    def _keep(self, outcome: Outcome, check_id: int) -> None:
        """Store ``outcome``'s answer with its record's id (``check_id``: deleting the record
        deletes the answer); runs inside the transaction of the unit and the record.
        Superseded (rolling both back) when this request's claim was taken over."""
        response = answers.respond(outcome)
        headers = {name: response[name] for name in KEPT_HEADERS if name in response}
        stored = IdempotentAnswer.objects.filter(
            tenant_id=self.tenant.pk, key_digest=self.key.digest, claim=self.token
        ).update(
            status=response.status_code,
            answer=response.content.decode(),
            headers=headers,
            liveness_check_id=check_id,
        )
        if stored != 1:
            raise Superseded
        self.kept = (outcome, response)

    def answer(self, outcome: Outcome) -> HttpResponse:
        """The response to send for ``outcome``: the one ``_keep`` rendered and stored when it
        kept this outcome (sent as stored, not rendered again), else a new one."""
        if self.kept is not None and self.kept[0] is outcome:
            return self.kept[1]
        return answers.respond(outcome)

    def _release(self) -> None:
        """Delete this request's claim unless its answer was committed. The database may be
        what failed: the claim then lapses after CLAIM_LEASE_S."""
        with suppress(DatabaseError):
            IdempotentAnswer.objects.filter(
                tenant_id=self.tenant.pk,
                key_digest=self.key.digest,
                claim=self.token,
                status__isnull=True,
            ).delete()


class Superseded(Exception):
    """This request's claim on its key was taken over (it outlived CLAIM_LEASE_S)."""
