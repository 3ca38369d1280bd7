"""Tenants, their quota and their credentials (hash_ids). Only a digest of each secret is
stored; ``HashId.tenant_for`` authenticates one (liveness.jsonapi.admit answers 401 for None)."""

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, TypeGuard

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from guard.models import Refusal
from guard.validators import no_control_characters, read_apart
from ml.calibration import maps_of
from ml.profiles import DEFAULT_PROFILE, Platt, exact_logit, fingerprint, profile_choices
from ml.text import trim_spaces

PREFIX_LENGTH = 8
# Issued hash_ids are 43 ASCII characters; anything else cannot match and is not looked up.
MAX_HASH_ID_LENGTH = 128
NEAR_LIMIT_PERCENT = 10  # "near its limit": at most this share of the limit left
NO_CHALLENGE = "none"
HEAD_TURN = "head_turn"
WHEN_UNSURE = "when_unsure"
CHALLENGES = (NO_CHALLENGE, HEAD_TURN, WHEN_UNSURE)
# A when_unsure tenant's band until an operator sets one, in logits either side of its
# threshold: by the rule of ml.fit_score_maps (BAND_*), written before its figures were read,
# the largest step of 0.25 asking at most 20 % of the held-out bona fide presentations
# (``fast``, leave one source out) for the challenge (docs: evaluator/head-turn.md).
DEFAULT_CHALLENGE_BAND = 0.75
MAX_CHALLENGE_BAND = 10.0  # about a threshold of 0.5: every score from 0.0000454 to 0.9999546
# A tenant's threshold until an operator sets one: the shipped score maps (ml.profiles) put
# 0.5 where it means the same on full frames and face crops, both classes weighed equally.
DEFAULT_THRESHOLD = 0.5


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TenantQuerySet(models.QuerySet["Tenant"]):
    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete these tenants, their rows first locked (``locked``)."""
        with transaction.atomic():
            locked(list(self.values_list("pk", flat=True)))  # the admin's has a GROUP BY
            return super().delete()


def locked(pks: list[int]) -> None:
    """Lock the rows of the tenants ``pks`` (PostgreSQL; SQLite's write transaction already
    holds the whole database) before their checks, sessions and hash_ids are deleted, so that
    a check in flight either commits first (its rows deleted with the others) or finds no
    tenant (401). Unlocked, a check that took its unit between the deletion of the tenant's
    checks and of its row failed the deletion on its foreign key (12 of 15 deletions under
    /liveness traffic on PostgreSQL), and a selfie deadlocked against it (the session's row
    locked by the deletion, the tenant's by the selfie's unit): 503 for the selfie."""
    rows = Tenant.objects.filter(pk__in=pks).select_for_update().order_by("pk")
    list(rows.values_list("pk", flat=True))


RATE_LIMIT_HELP = (
    "Most requests per minute (all workers), at least 1. Blank: no limit. To stop a tenant, "
    "deactivate it."
)


class Tenant(models.Model):
    name = models.CharField(max_length=200, unique=True, validators=[no_control_characters])
    is_active = models.BooleanField(default=True)
    request_limit = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Blank means unlimited."
    )
    requests_used = models.PositiveBigIntegerField(default=0)
    # At least 1: a limit of 0 refused every call with 429 and a Retry-After that never came
    # true, where 0 turns the environment's limits off (accounts.checks warns of such a row).
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=RATE_LIMIT_HELP,
    )
    threshold = models.FloatField(
        default=DEFAULT_THRESHOLD,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="is_live = 1 when the liveness score is at least this value.",
    )
    profile = models.CharField(
        max_length=16,
        choices=profile_choices,
        default=DEFAULT_PROFILE,
        help_text="Which models judge this tenant's selfies.",
    )
    crop_policy = models.CharField(
        max_length=8,
        choices=[
            ("judge", "judge: face crops get a verdict"),
            ("refuse", "refuse: face crops get 422 face_too_close"),
        ],
        default="judge",
        help_text="What to do with an image the face fills (a face crop, not a camera frame).",
    )
    challenge = models.CharField(
        max_length=16,
        choices=[
            (NO_CHALLENGE, "none: a capture session judges the selfie alone"),
            (HEAD_TURN, "head_turn: a capture session first asks for random head turns"),
            (WHEN_UNSURE, "when_unsure: head turns only when the selfie's score is unsure"),
        ],
        default=NO_CHALLENGE,
        help_text="The active challenge of this tenant's capture sessions (not of /liveness).",
    )
    challenge_band = models.FloatField(
        default=DEFAULT_CHALLENGE_BAND,
        db_default=DEFAULT_CHALLENGE_BAND,  # the previous release inserts tenants without it
        validators=[MinValueValidator(0.0), MaxValueValidator(MAX_CHALLENGE_BAND)],
        help_text="when_unsure: a selfie whose score lies within this many logits of the "
        "threshold (either side) is decided by the head-turn challenge.",
    )
    # The active calibration, copied here so /liveness applies it with the tenant it already
    # loaded at authentication: {"id", "profile", "fingerprint", "maps": {kind: {"a", "b"}}}
    # (or, stored before maps per capture kind, {"id", "a", "b", "profile", "fingerprint"}:
    # one map for both); null = uncalibrated. "fingerprint": ml.profiles.fingerprint of the
    # profile when it was fitted.
    calibration = models.JSONField(null=True, blank=True, editable=False)
    # A candidate calibration in shadow: {"id", "profile", "fingerprint", "maps", "threshold",
    # "keeps_threshold", "since", "until"} (times as POSIX seconds; "keeps_threshold": its
    # verdicts at the tenant's threshold, absent before 2026-12-05: at "threshold"). Until then
    # every check also records its verdict.
    shadow_calibration = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Delete this tenant, its row first locked (``locked``)."""
        with transaction.atomic(using=using):
            locked([self.pk])
            return super().delete(using, keep_parents)

    def lock(self) -> None:
        """Lock this tenant's row until the transaction ends (inside ``transaction.atomic``;
        SQLite's write transaction holds the whole database) and read it again: a calibration
        switch decides from what it reads here. Read unlocked, two promotions of one candidate
        both promoted it (two history entries), and a discard, or an upload job's new
        candidate, racing a promotion left the active calibration marked as set aside."""
        self.refresh_from_db(from_queryset=Tenant.objects.select_for_update())

    def clean_fields(self, exclude: Any = None) -> None:
        """The name without the spaces around it (as Django's forms strip them), before its
        validators: a line break or a tab there is refused like one inside (the admin's form
        and ``create_tenant`` trimmed it silently before, with every other whitespace)."""
        if isinstance(self.name, str):
            self.name = trim_spaces(self.name)
        super().clean_fields(exclude)

    def clean(self) -> None:
        """A new name may not read as nothing, nor as another tenant's (``ml.text.reads_as``):
        a blank one names no tenant an operator can pick out, and two tenants shown alike in
        the admin, the console and /metrics get each other's resets, revocations and
        thresholds. A name kept as it was is not checked again."""
        super().clean()
        if not isinstance(self.name, str):
            return
        if self.pk and Tenant.objects.filter(pk=self.pk, name=self.name).exists():
            return
        # The same name exactly is the unique constraint's to refuse.
        others = Tenant.objects.exclude(pk=self.pk).exclude(name=self.name)
        try:
            read_apart(self.name, others.values_list("pk", "name"), "tenant")
        except ValidationError as refused:
            raise ValidationError({"name": refused}) from None

    @property
    def remaining(self) -> int | None:
        if self.request_limit is None:
            return None
        return max(self.request_limit - self.requests_used, 0)

    @property
    def quota_state(self) -> str:
        """ "exhausted" (0 left), "near" (NEAR_LIMIT_PERCENT or less left), "ok", "unlimited"."""
        remaining = self.remaining
        if remaining is None or self.request_limit is None:
            return "unlimited"
        if remaining == 0:
            return "exhausted"
        return "near" if remaining * 100 <= self.request_limit * NEAR_LIMIT_PERCENT else "ok"

    def has_room(self) -> bool:
        """Whether this tenant (as loaded) had quota left; a hint, ``reserve_unit`` decides."""
        return self.request_limit is None or self.requests_used < self.request_limit

    @classmethod
    def reserve_unit(cls, tenant_id: int, digest: str | None = None) -> bool:
        """Take one unit of the tenant's quota, atomically (one conditional UPDATE, safe on
        SQLite and PostgreSQL); False when the limit is reached, the tenant is inactive, or
        the hash_id ``digest`` (when given) is revoked or gone: a check authenticated before
        its tenant was deactivated or its hash_id revoked is then refused, not charged."""
        # The conditional UPDATE the ORM writes for filter(pk, under limit).update(F + 1), as
        # one fixed statement: building it through the ORM cost 0.3 ms per request
        # (bench.hotpath).
        sql, params = _RESERVE_SQL, list[int | str]([tenant_id])
        if digest is not None:
            sql, params = sql + _RESERVE_HASH_ID_SQL, [tenant_id, digest, tenant_id]
        with connection.cursor() as cursor:
            cursor.execute(
                sql.format(table=cls._meta.db_table, hash_ids=HashId._meta.db_table), params
            )
            updated: int = cursor.rowcount  # the DB-API's cursor: untyped
            return updated == 1

    @classmethod
    def reset_quotas(cls, tenants: "QuerySet[Tenant] | None" = None) -> list["Tenant"]:
        """Set requests_used to 0 for ``tenants`` (all by default); returns them as they were
        just before (``requests_used``: the units the reset took back, for the history).

        Read and reset under one lock of their rows: read first, then reset, a unit taken in
        between would be reset but never counted as used (8 of 14 units missing from 40 history
        entries under /liveness traffic on PostgreSQL)."""
        pks = list((cls.objects.all() if tenants is None else tenants).values_list("pk", flat=True))
        with transaction.atomic():
            before = list(cls.objects.filter(pk__in=pks).select_for_update().order_by("pk"))
            cls.objects.filter(pk__in=pks).update(requests_used=0)
        return before

    def maps(self) -> dict[str, Platt] | None:
        """The active calibration's map per capture kind, when this tenant has one for its
        current profile and models."""
        return self._maps_of_profile(self.calibration)

    def not_applied(self, stored: dict[str, Any] | None) -> str:
        """Why a stored calibration (active or shadow) is not applied, in words; "" when it
        is, or there is none. One of another profile, or fitted on other models (another
        fingerprint: an upgrade shipped other model files, preparation or fusion), maps
        logits that this tenant's checks no longer make."""
        if not stored:
            return ""
        if stored.get("profile") != self.profile:
            return "it was fitted for another profile"
        if stored.get("fingerprint") != fingerprint(self.profile):
            return "it was fitted on other models"
        return ""

    def _maps_of_profile(self, stored: dict[str, Any] | None) -> dict[str, Platt] | None:
        """The maps of a stored calibration (active or shadow) made for the current profile
        and models."""
        if not stored or self.not_applied(stored):
            return None
        return maps_of(stored)

    def score(self, logit: float, capture: str, uncalibrated: float) -> float:
        """The liveness_score of a fused logit of a ``capture`` ("frame" or "crop"): the
        calibrated P(live) of that kind when this tenant has a calibration of its current
        profile and models, else the engine's own P(live) (the shipped map)."""
        maps = self.maps()
        return uncalibrated if maps is None else maps[capture].p(logit)

    def within_band(self, score: float, band: float) -> bool:
        """Whether a selfie's ``score`` lies within ``band`` logits of the threshold, either
        side (a when_unsure session's band, as its tenant had it when the session opened).
        Exact logits: a threshold of 0 or 1 is infinitely far from every score, so no selfie
        is held and each gets /liveness's verdict (1.0: none live, 0.0: all). Clipped at
        ml.profiles.EPS, a threshold of 1.0 would sit at 6.9 logits with every score over
        0.999: such a selfie, not live on /liveness, would be held, then made live by its
        challenge."""
        return abs(exact_logit(score) - exact_logit(self.threshold)) <= band  # nan: never

    def shadow_verdict(self, logit: float, capture: str, now: float) -> tuple[float, bool] | None:
        """(score, is_live) under the shadow candidate, while its period runs (``now``: POSIX
        seconds) and it is of the current profile and models; else None. The same fused
        logit: no second engine run."""
        shadow = self.shadow_calibration
        if not shadow or not shadow["since"] <= now < shadow["until"]:
            return None
        maps = self._maps_of_profile(shadow)
        if maps is None:
            return None
        score = maps[capture].p(logit)
        threshold = self.threshold if shadow.get("keeps_threshold") else shadow["threshold"]
        return score, score >= threshold


def forget_refusals(sender: type[Tenant], instance: Tenant, **kwargs: Any) -> None:
    """post_delete of a tenant, however deleted (its page, "Delete selected", the ORM): its
    daily refusal counts go with it. ``guard`` sits below ``accounts`` and keeps the tenant's
    id as a plain integer, no foreign key to cascade from: they outlived it, shown as "deleted
    tenant #N". In the deletion's transaction, one DELETE per tenant."""
    refusals_of([instance]).delete()


def refusals_of(tenants: list[Tenant] | QuerySet[Tenant]) -> QuerySet[Refusal]:
    """The daily refusal counts of ``tenants``: what their deletion takes (forget_refusals),
    and what its delete pages count (accounts.admin)."""
    if isinstance(tenants, QuerySet):
        return Refusal.objects.filter(tenant_id__in=tenants.values_list("pk", flat=True))
    return Refusal.objects.filter(tenant_id__in=[tenant.pk for tenant in tenants])


_RESERVE_SQL = (
    "UPDATE {table} SET requests_used = requests_used + 1 "
    "WHERE id = %s AND is_active AND (request_limit IS NULL OR requests_used < request_limit)"
)
# The hash_id the check was authenticated with, still unrevoked: in the UPDATE's own
# statement, on the digest's unique index: about 10 us more per reservation on SQLite (3,000
# in one transaction: 25-33 us without, 35-39 us with), no round trip more.
_RESERVE_HASH_ID_SQL = (
    " AND EXISTS (SELECT 1 FROM {hash_ids} "
    "WHERE digest = %s AND tenant_id = %s AND revoked_at IS NULL)"
)


@dataclass(frozen=True)
class IssuedHashId:
    """A freshly created credential: ``secret`` exists only here, never in the database."""

    record: "HashId"
    secret: str


class HashIdQuerySet(models.QuerySet["HashId"]):
    def active(self) -> "HashIdQuerySet":
        return self.filter(revoked_at__isnull=True)


def new_secret() -> str:
    """A new hash_id: 43 URL-safe characters (256 bits), never starting with "-", which every
    command line reads as an option (``facia-client --hash-id -x...`` failed 1 time in 64)."""
    while (secret := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return secret


class HashId(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="hash_ids")
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = HashIdQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "hash_id"
        verbose_name_plural = "hash_ids"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    @classmethod
    def issue(cls, tenant: Tenant) -> IssuedHashId:
        secret = new_secret()
        record = cls.objects.create(
            tenant=tenant, prefix=secret[:PREFIX_LENGTH], digest=digest_of(secret)
        )
        return IssuedHashId(record=record, secret=secret)

    @classmethod
    def tenant_for(cls, secret: str | None) -> Tenant | None:
        """The active tenant of an unrevoked hash_id ``secret``, else None."""
        if not _may_match(secret):
            return None
        digest = digest_of(secret)
        # One statement, as the ORM query ``active().filter(digest=..., tenant__is_active=True)
        # .select_related("tenant")`` would write it, but without building it per request:
        # that cost 0.5 ms of Python per request, the raw query 0.07 ms (python -m bench.hotpath).
        found = next(iter(Tenant.objects.raw(_tenant_for_sql(), [digest])), None)
        # The index lookup already matched; compare_digest keeps the final check constant-time.
        if found is None or not hmac.compare_digest(found.hash_digest, digest):  # type: ignore[attr-defined]  # the raw query's column
            return None
        return found

    @classmethod
    def owner_of(cls, secret: str | None) -> Tenant | None:
        """The tenant a hash_id was issued to, revoked or inactive too: only to count its 401."""
        if not _may_match(secret):
            return None
        found = cls.objects.filter(digest=digest_of(secret)).select_related("tenant").first()
        return None if found is None else found.tenant


def _may_match(secret: str | None) -> TypeGuard[str]:
    """Whether ``secret`` could be an issued hash_id, so that looking it up can find one."""
    return secret is not None and 0 < len(secret) <= MAX_HASH_ID_LENGTH and secret.isascii()


@functools.cache
def _tenant_for_sql() -> str:
    tenant, hash_id = Tenant._meta.db_table, HashId._meta.db_table
    return (
        f"SELECT t.*, h.digest AS hash_digest FROM {hash_id} h "
        f"JOIN {tenant} t ON t.id = h.tenant_id "
        f"WHERE h.digest = %s AND h.revoked_at IS NULL AND t.is_active LIMIT 1"
    )
