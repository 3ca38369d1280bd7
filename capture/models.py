"""Capture sessions: a short-lived, single-purpose token a browser may hold instead of the
tenant's hash_id. Only the token's digest is stored; no image ever is."""

import hashlib
import secrets
import uuid

from django.db import models

from accounts.models import WHEN_UNSURE, HashId, Tenant
from liveness.models import LivenessCheck


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


NOT_REQUIRED = ""
PENDING = "pending"
RUNNING = "running"
PASSED = "passed"
FAILED = "failed"
CHALLENGE_STATES = [
    (s, s or "not required") for s in (NOT_REQUIRED, PENDING, RUNNING, PASSED, FAILED)
]


class CaptureSession(models.Model):
    OPEN = "open"  # waiting for a selfie
    PROCESSING = "processing"  # a selfie is being judged (claimed by one request)
    DONE = "done"  # has its verdict
    STATES = [(OPEN, OPEN), (PROCESSING, PROCESSING), (DONE, DONE)]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="capture_sessions")
    # The hash_id that opened it: revoking (or deleting) that hash_id ends the session too.
    credential = models.ForeignKey(
        HashId, on_delete=models.SET_NULL, null=True, related_name="capture_sessions"
    )
    token_digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=16, choices=STATES, default=OPEN)
    # What the check record keeps, nothing more: verdict, score, capture kind, frame count.
    is_live = models.BooleanField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    capture = models.CharField(max_length=8, blank=True)
    frames = models.PositiveSmallIntegerField(default=0)
    refused_code = models.CharField(
        max_length=64, blank=True, help_text="The last gate that refused a selfie (no verdict)."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    # The head-turn challenge (a head_turn tenant's sessions): "" when none is required, else
    # pending (not started), running, passed or failed. Only the judge's state is kept (steps,
    # timings, landmark trajectory), never a frame; ``challenge_version`` orders the polls
    # that update it (one wins, the other's frame is dropped).
    challenge = models.CharField(max_length=8, choices=CHALLENGE_STATES, blank=True)
    challenge_judge = models.JSONField(null=True, blank=True, editable=False)
    challenge_code = models.CharField(max_length=32, blank=True)
    challenge_tries = models.PositiveSmallIntegerField(default=0)
    challenge_version = models.PositiveIntegerField(default=0, editable=False)
    # The selfie's check record, whose verdict and score the session copies: deleting the
    # record deletes the session in its transaction (liveness.models.CheckQuerySet.delete,
    # an erasure request). DO_NOTHING keeps the records deletable in bulk by Django, without
    # loading each row (a cascade loaded every record a "Select all" or prune_checks
    # deletes). No database constraint: that deletion keeps the two consistent, and a
    # constraint would have the database probe this table again for every record deleted
    # (PostgreSQL's trigger, SQLite's foreign-key check). A when_unsure tenant's selfie
    # scored within its band is *held* (``held``): the session open again with the selfie's
    # score, capture and frames kept (its unit taken, its record saying not live) until the
    # challenge settles it (capture.challenge.settle).
    selfie_check = models.ForeignKey(
        LivenessCheck,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        editable=False,
        related_name="capture_sessions",
    )
    # The selfie check's request id: a held selfie's final check line carries it (joining the
    # line written when it was held) without reading the record, and the admin's list of
    # sessions is searched by it (an erasure request names a request id).
    selfie_request_id = models.CharField(max_length=128, blank=True, db_default="", editable=False)
    # The challenge rule the session was opened under: its tenant's ``challenge`` then and, for
    # when_unsure, its ``challenge_band`` (else null). A tenant switched while the session
    # runs (up to SESSION_TTL_S) does not change how its selfie is judged: read at the selfie,
    # a when_unsure session switched to head_turn decided a selfie in its band by its score
    # alone, with no challenge ever asked. "" (db_default): opened by the previous release,
    # which inserts sessions without this column, selfie_request_id and token_calls.
    challenge_mode = models.CharField(max_length=16, blank=True, db_default="", editable=False)
    challenge_band = models.FloatField(null=True, blank=True, editable=False)
    # Token calls admitted so far, against SESSION_CALL_BUDGET (capture.service.within_budget).
    token_calls = models.PositiveIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.tenant} ({self.state})"

    def unsure(self, score: float) -> bool:
        """Whether a selfie's ``score`` asks this session for the challenge: opened under
        when_unsure, the score within the band it was opened with (the tenant's threshold)."""
        if self.challenge_mode != WHEN_UNSURE or self.challenge_band is None:
            return False
        return self.tenant.within_band(score, self.challenge_band)

    @property
    def held(self) -> bool:
        """A selfie judged, its verdict waiting for the challenge (when_unsure)."""
        return self.state != self.DONE and self.score is not None
