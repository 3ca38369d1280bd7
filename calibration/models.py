"""Calibrations (a tenant's Platt map, kept after a revert), the admin upload's calibration
jobs and the evaluations of ``manage.py evaluate``. The tables keep the names they had in
accounts and liveness (``db_table``): the models moved, the rows did not."""

import re
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from accounts.models import Tenant
from ml import profiles
from ml.calibration import maps_of
from ml.profiles import FINGERPRINT_LENGTH, Platt, scoring_digest
from ml.tenant_calibration import KindFit, kept_rule, kind_sentence, same_map, threshold_sentence


class Calibration(models.Model):
    """One run of ``manage.py calibrate`` (or the admin upload): kept after a revert."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calibrations")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.CharField(max_length=150, help_text="User (admin) or OS user (command).")
    origin = models.CharField(max_length=32, help_text="command or admin upload")
    profile = models.CharField(max_length=16)
    fingerprint = models.CharField(
        max_length=FINGERPRINT_LENGTH,
        db_default="",  # the previous release inserts without it: "" is never applied
        help_text="ml.profiles.fingerprint of the profile it was fitted on: applied only while "
        "the profile's models are the same.",
    )
    params = models.JSONField(
        help_text="Platt map per capture kind: {kind: {a, b}}, P(live) = sigmoid(a * z + b), "
        "z fused logit (one {a, b} for both kinds before maps per kind)."
    )
    target_apcer = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(help_text="The tenant threshold this calibration set.")
    previous_threshold = models.FloatField(help_text="Restored on revert.")
    bona_fide = models.PositiveIntegerField()
    attacks = models.PositiveIntegerField()
    refused = models.PositiveIntegerField(default=0, help_text="Images the gates refused.")
    figures = models.JSONField(
        help_text="ml.tenant_calibration.Result.figures(): what changed, held-out figures."
    )
    reverted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_calibration"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"calibration #{self.pk} of {self.tenant} ({self.created_at:%Y-%m-%d %H:%M})"

    def maps(self) -> dict[str, dict[str, float]]:
        return {kind: platt.to_dict() for kind, platt in maps_of(self.params).items()}

    def stamp(self) -> dict[str, object]:
        """What the tenant's copy says of this calibration besides its maps."""
        return {"id": self.pk, "profile": self.profile, "fingerprint": self.fingerprint}

    def keeps_threshold(self) -> bool:
        """Whether its threshold rule kept the tenant's threshold (no target APCER, no equal
        error rate): promoted, it keeps the one the tenant has then."""
        rule = ((self.figures or {}).get("threshold") or {}).get("rule") or ""
        return self.target_apcer is None and kept_rule(rule)

    def over(self, tenant: Tenant) -> None:
        """This shadow candidate as it applies over ``tenant`` as it is now (locked, read
        again), before it is promoted: stored, it was computed against the tenant's threshold
        of then, which the operator may have changed since. A rule that kept the threshold
        keeps the one the tenant has now; a threshold it set applies. Its record (threshold,
        the threshold a revert restores, what its figures and sentences say of the threshold)
        is made to say so: a revert restored the threshold of before the candidate was stored,
        and its sentence still said "Threshold 0.5000: kept" of a tenant kept at 0.7000."""
        now = tenant.threshold
        threshold = now if self.keeps_threshold() else self.threshold
        figures = _over_maps(dict(self.figures or {}), tenant)
        rule = (figures.get("threshold") or {}).get("rule")
        if rule is not None:
            figures["threshold"] = {**figures["threshold"], "before": now, "after": threshold}
            figures["sentences"] = [
                threshold_sentence(now, threshold, rule) if said.startswith("Threshold ") else said
                for said in figures.get("sentences") or []
            ]
        self.threshold = threshold
        self.previous_threshold = uncalibrated_threshold(tenant)
        self.figures = figures
        self.save(update_fields=["threshold", "previous_threshold", "figures"])

    def activate(self) -> None:
        """The tenant's active calibration (its maps and threshold), under the tenant's lock."""
        tenant = self.tenant
        with transaction.atomic():
            tenant.lock()
            tenant.calibration = {**self.stamp(), "maps": self.maps()}
            tenant.threshold = self.threshold
            tenant.save(update_fields=["calibration", "threshold", "updated_at"])

    def shadow(self, since: datetime, until: datetime) -> None:
        """Set as the tenant's shadow candidate from ``since`` to ``until``; a candidate it
        replaces (read under the tenant's lock: an upload job's tenant was read when the job
        began) is marked set aside, as a discarded one is."""
        tenant = self.tenant
        with transaction.atomic():
            tenant.lock()
            replaced = (tenant.shadow_calibration or {}).get("id")
            if replaced is not None and replaced != self.pk:
                Calibration.objects.filter(pk=replaced, tenant=tenant).update(reverted_at=since)
            tenant.shadow_calibration = {
                **self.stamp(),
                "maps": self.maps(),
                "threshold": self.threshold,
                # Promoted, a candidate whose rule kept the threshold keeps the tenant's of then
                # (Calibration.over): its shadow verdicts are taken at the tenant's threshold
                # of each check, so the flips counted are the ones the promote would make.
                "keeps_threshold": self.keeps_threshold(),
                "since": since.timestamp(),
                "until": until.timestamp(),
            }
            tenant.save(update_fields=["shadow_calibration", "updated_at"])


def applied_maps(tenant: Tenant) -> tuple[dict[str, Platt], str]:
    """The maps ``tenant`` applies per capture kind (its calibration's, else the shipped
    ones) and their name in a calibration's sentences."""
    mine = tenant.maps()
    if mine is None:
        return profiles.shipped_maps(tenant.profile), "the shipped maps"
    return mine, f"calibration #{(tenant.calibration or {}).get('id')}'s maps"


def _over_maps(figures: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    """A candidate's ``figures`` made true of what it replaces at its promotion: the maps
    ``tenant`` (locked, read again) applies now, a calibration's or the shipped ones. Its
    per-kind "before" (the maps table's "x → y", the sentences' "slope x → y" and "a full frame
    that scored 0.50 now scores ...") said what the tenant applied when it was fitted, which a
    revert or another calibration since may have changed: they are recomputed against now.
    Its figures "now" cannot be (the sample's scores are not kept): when the tenant's maps or
    threshold differ from those they were taken with, they are labelled "when fitted" (the
    threshold of then kept in "fitted_over") and a sentence says what they were taken with."""
    maps = figures.get("maps")
    if figures.get("version") != 2 or not maps:  # stored before maps per kind: said nothing
        return figures
    active, replaced = applied_maps(tenant)
    fits = [
        KindFit(
            kind,
            m["live"],
            m["spoof"],
            Platt(**m["shipped"]),
            active[kind],
            Platt(**m["after"]),
            m["fitted"],
        )
        for kind, m in maps.items()
    ]
    said = list(figures.get("sentences") or [])
    said[: len(fits)] = [kind_sentence(f) for f in fits]  # ml.tenant_calibration.sentences
    then = (figures.get("threshold") or {}).get("before")
    current = figures.get("current") or "the shipped maps"
    moved = any(not same_map(Platt(**m["before"]), active[k]) for k, m in maps.items())
    moved |= replaced != current
    moved |= then is not None and abs(then - tenant.threshold) >= 5e-5
    if moved and "fitted_over" not in figures:
        at = f" at threshold {then:.4f}" if then is not None else ""
        said = [_when_fitted(s) for s in said]
        # before the sentences of its figures (ml.tenant_calibration.sentences: the threshold's
        # comes first of the others), which say "now" of them
        after = next((i + 1 for i, s in enumerate(said) if s.startswith("Threshold ")), len(said))
        said.insert(
            after,
            f'Its figures "now" were taken when it was fitted, with {current}{at}; promoted, it '
            f"replaced {replaced} at threshold {tenant.threshold:.4f}, which they do not "
            "describe.",
        )
        figures["fitted_over"] = {"threshold": then}
    figures["maps"] = {k: {**m, "before": active[k].to_dict()} for k, m in maps.items()}
    figures["sentences"] = said
    return figures


def _when_fitted(said: str) -> str:
    """A sentence of the figures "now" (ml.tenant_calibration.in_sample_sentences,
    held_out_sentence) as it reads of a promoted candidate's, taken when it was fitted."""
    if said.startswith("Figures held out ("):
        return re.sub(r"\bnow\b", '"now" (when fitted)', said)
    return said.replace("The figures now use ", 'The figures "now" (when it was fitted) used ', 1)


def uncalibrated_threshold(tenant: Tenant) -> float:
    """What a revert of a calibration made active over ``tenant`` as it is now goes back to:
    the threshold the tenant had while uncalibrated (its active calibration's, else its own)."""
    active = (tenant.calibration or {}).get("id")
    chain = Calibration.objects.filter(pk=active, tenant=tenant).first() if active else None
    return chain.previous_threshold if chain else tenant.threshold


def shadow_candidate(tenant: Tenant) -> Calibration | None:
    shadow = tenant.shadow_calibration
    if not shadow:
        return None
    return Calibration.objects.filter(pk=shadow["id"], tenant=tenant).first()


class NoShadow(Exception):
    """The tenant has no shadow candidate, or not the one the operator saw (read under its
    lock: another switch, or an upload job's new candidate, came first)."""


def _locked_candidate(tenant: Tenant, seen: int | None) -> Calibration | None:
    """``tenant`` locked and read again (inside ``transaction.atomic``), its candidate's record;
    NoShadow when it has no candidate, or one other than ``seen`` (when given)."""
    tenant.lock()
    shadow = tenant.shadow_calibration
    if not shadow or seen is not None and shadow.get("id") != seen:
        raise NoShadow
    found = shadow_candidate(tenant)
    if found is not None:
        found.tenant = tenant  # the locked row, read again
    return found


def promote_shadow(tenant: Tenant, seen: int | None = None) -> tuple[Calibration, float] | None:
    """The shadow candidate becomes the active calibration over the tenant as it is now
    (Calibration.over: its maps, and the threshold its rule set, or the tenant's threshold now
    when its rule kept it): it and the threshold the tenant had; None when its record is gone;
    NoShadow when there is no candidate or it is not ``seen``. Its caller writes the history
    entry inside a transaction around this one (both or neither: the admin's shadow_view)."""
    with transaction.atomic():
        found = _locked_candidate(tenant, seen)
        if found is None:
            return None
        before = tenant.threshold
        found.over(tenant)
        found.activate()
        tenant.shadow_calibration = None
        tenant.save(update_fields=["shadow_calibration", "updated_at"])
    return found, before


def discard_shadow(tenant: Tenant, seen: int | None = None) -> Calibration | None:
    """Stop the shadow; the candidate stays in the history, marked as set aside. NoShadow
    when there is no candidate or it is not ``seen``. Its caller writes the history entry inside
    a transaction around this one (both or neither: the admin's shadow_view)."""
    with transaction.atomic():
        found = _locked_candidate(tenant, seen)
        tenant.shadow_calibration = None
        tenant.save(update_fields=["shadow_calibration", "updated_at"])
        if found is not None:
            found.reverted_at = timezone.now()
            found.save(update_fields=["reverted_at"])
    return found


def revert_calibration(tenant: Tenant) -> float | None:
    """Back to uncalibrated scores and the threshold the tenant had before; the threshold it
    had (read under its lock), or None when the tenant was not calibrated. Its caller writes the
    history entry inside a transaction around this one (both or neither: the admin's action)."""
    with transaction.atomic():
        tenant.lock()
        active = tenant.calibration
        if not active:
            return None
        before = tenant.threshold
        found = Calibration.objects.filter(pk=active.get("id"), tenant=tenant).first()
        tenant.calibration = None
        fields = ["calibration", "updated_at"]
        if found is not None:
            tenant.threshold = found.previous_threshold
            fields.append("threshold")
            found.reverted_at = timezone.now()
            found.save(update_fields=["reverted_at"])
        tenant.save(update_fields=fields)
    return before


class CalibrationJob(models.Model):
    """An admin upload's calibration, run by the task worker (django-tasks, ``task_id``): who
    asked, how far it is. Metadata only: the zip itself is never stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calibration_jobs")
    task_id = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.CharField(max_length=150)
    user_id = models.IntegerField(null=True, blank=True, help_text="The admin, for the history.")
    target_apcer = models.FloatField(null=True, blank=True)
    equal_error = models.BooleanField(default=False, help_text="Threshold where APCER = BPCER.")
    shadow_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Stored as a shadow candidate for this many days."
    )
    images = models.PositiveIntegerField(help_text="Images in the zip.")
    started = models.PositiveIntegerField(default=0, help_text="Images judged so far.")
    beat_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task worker last showed progress."
    )

    class Meta:
        db_table = "accounts_calibrationjob"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"calibration job #{self.pk} of {self.tenant}"


class Evaluation(models.Model):
    """One run of ``manage.py evaluate``: the report, with the scores of the presentations
    that passed the gates, so a threshold can be derived later for any target APCER. It keeps
    no file or folder name, and no subject in clear (ml.anonymised); one run as a tenant
    (``--tenant``) is that tenant's, deleted with it."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="evaluations",
        help_text="The tenant it was run as (evaluate --tenant): deleted with it.",
    )
    profile = models.CharField(max_length=16)
    threshold = models.FloatField(help_text="The threshold the report's figures were taken at.")
    bona_fide = models.PositiveIntegerField(help_text="Bona fide presentations scored.")
    attacks = models.PositiveIntegerField(help_text="Attack presentations scored.")
    auc = models.FloatField(null=True, blank=True)
    report = models.JSONField(
        help_text="ml.evaluate.Report.to_dict() as ml.anonymised stores it: no file, folder "
        "or subject name."
    )
    # The previous release inserts evaluations without the four columns below: its rows get
    # the database's defaults, blank scored_with and null calibration (never matched to a
    # tenant's threshold).
    crop_policy = models.CharField(
        max_length=16,
        default="judge",
        db_default="judge",
        help_text="The crop policy its gates judged under.",
    )
    calibrated = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Scored by a tenant's calibration (evaluate --tenant); else the shipped maps.",
    )
    calibration = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The id of the tenant calibration that scored it; null when uncalibrated, or "
        "when the report keeps the maps without their id (never matched to a tenant then).",
    )
    scored_with = models.CharField(
        max_length=FINGERPRINT_LENGTH,
        blank=True,
        default="",
        db_default="",
        help_text="ml.profiles.scoring_digest of its profile when it ran (models and shipped "
        "maps); blank when unknown (never matched to an uncalibrated tenant then).",
    )
    # Empty here: this code stores no folder name. The previous release's evaluate writes one
    # and its admin reads it; without the column both failed. The next release takes it out of
    # the models, the one after drops it (docs/contributor/migrations.md, "Removing a column").
    folder = models.CharField(max_length=500, blank=True, db_default="", editable=False)

    class Meta:
        db_table = "liveness_evaluation"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} ({self.profile}, {self.created_at:%Y-%m-%d %H:%M})"

    @classmethod
    def latest_for(cls, profile: str) -> "Evaluation | None":
        return cls.objects.filter(profile=profile).first()

    def scoring_said(self) -> str:
        """How its scores were made, as a reader of its AUC needs to know: its crop policy, the
        shipped maps or the calibration that scored it, and whether today's models and maps
        would score it so (an upgrade moves every score)."""
        crops = "crops judged" if self.crop_policy == "judge" else f"crops {self.crop_policy}d"
        if self.calibrated:
            named = f"#{self.calibration}" if self.calibration else "without its id"
            return f"{crops}, calibration {named}"
        if self.scored_with != scoring_digest(self.profile):
            return f"{crops}, older models or maps than today's"
        return f"{crops}, shipped maps"

    @classmethod
    def latest_scoring_as(cls, tenant: Tenant) -> "Evaluation | None":
        """The latest evaluation whose scores are ``tenant``'s (its profile, crop policy, and its
        applied calibration or, uncalibrated, the shipped maps), with attacks scored: a threshold
        from another's is wrong for it (an evaluation under crop policy refuse gave a judge
        tenant 0.1136, and 28 of 36 dev attacks then passed where 1 did at the judge one's
        0.8057)."""
        found = cls._with_attacks_as(tenant)
        if tenant.maps() is None:
            today = scoring_digest(tenant.profile)
            return found.filter(calibrated=False, scored_with=today).first()
        calibration = (tenant.calibration or {}).get("id")
        if calibration is None:  # a copy without its id: no evaluation can be shown to be of it
            return None
        return found.filter(calibrated=True, calibration=calibration).first()

    @classmethod
    def stale_for(cls, tenant: Tenant) -> "Evaluation | None":
        """The latest uncalibrated evaluation of ``tenant``'s profile and crop policy scored
        under other models or shipped maps than today's (an upgrade's): why none matches."""
        found = cls._with_attacks_as(tenant).filter(calibrated=False)
        return found.exclude(scored_with=scoring_digest(tenant.profile)).first()

    @classmethod
    def _with_attacks_as(cls, tenant: Tenant) -> "models.QuerySet[Evaluation]":
        """The evaluations of ``tenant``'s profile and crop policy with attacks scored, run as
        no tenant (the operator's own set) or as ``tenant`` itself: one run as another tenant
        (``evaluate --tenant``) holds that tenant's scores and is deleted with it."""
        mine = models.Q(tenant__isnull=True)
        if tenant.pk is not None:
            mine |= models.Q(tenant_id=tenant.pk)
        return cls.objects.filter(
            mine, profile=tenant.profile, crop_policy=tenant.crop_policy, attacks__gt=0
        )

    def scored_by(self) -> str:
        """ "shipped maps" or "calibration #3", how its scores were made."""
        if not self.calibrated:
            return "shipped maps"
        return f"calibration #{self.calibration}" if self.calibration else "a tenant calibration"

    def described(self) -> str:
        """ "#7 of 2025-01-02 10:30 (fast profile, crop policy judge, shipped maps)"."""
        return (
            f"#{self.pk} of {self.created_at:%Y-%m-%d %H:%M} ({self.profile} profile, crop "
            f"policy {self.crop_policy}, {self.scored_by()})"
        )

    def attack_scores(self) -> list[float]:
        return list(self.report["scores"]["attack"])

    def bona_fide_scores(self) -> list[float]:
        return list(self.report["scores"]["bona_fide"])
