"""Calibrations (a tenant's Platt map, kept after a revert), the admin upload's calibration
jobs and the evaluations of ``manage.py evaluate``. The tables keep the names they had in
accounts and liveness (``db_table``): the models moved, the rows did not."""

from django.db import models
from django.utils import timezone

from accounts.models import Tenant


class Calibration(models.Model):
    """One run of ``manage.py calibrate`` (or the admin upload): kept after a revert."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calibrations")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.CharField(max_length=150, help_text="User (admin) or OS user (command).")
    origin = models.CharField(max_length=32, help_text="command or admin upload")
    profile = models.CharField(max_length=16)
    params = models.JSONField(help_text="Platt map: P(live) = sigmoid(a * z + b), z fused logit.")
    target_apcer = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(help_text="The tenant threshold this calibration set.")
    previous_threshold = models.FloatField(help_text="Restored on revert.")
    bona_fide = models.PositiveIntegerField()
    attacks = models.PositiveIntegerField()
    refused = models.PositiveIntegerField(default=0, help_text="Images the gates refused.")
    figures = models.JSONField(help_text="before / after / cross_validated, with 95 % CIs.")
    reverted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_calibration"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"calibration #{self.pk} of {self.tenant} ({self.created_at:%Y-%m-%d %H:%M})"

    def activate(self) -> None:
        tenant = self.tenant
        tenant.calibration = {"id": self.pk, **self.params, "profile": self.profile}
        tenant.threshold = self.threshold
        tenant.save(update_fields=["calibration", "threshold", "updated_at"])


def revert_calibration(tenant: Tenant) -> Calibration | None:
    """Back to uncalibrated scores and the threshold the tenant had before; None when the
    tenant was not calibrated."""
    active = tenant.calibration
    if not active:
        return None
    found = Calibration.objects.filter(pk=active.get("id"), tenant=tenant).first()
    tenant.calibration = None
    fields = ["calibration", "updated_at"]
    if found is not None:
        tenant.threshold = found.previous_threshold
        fields.append("threshold")
        found.reverted_at = timezone.now()
        found.save(update_fields=["reverted_at"])
    tenant.save(update_fields=fields)
    return found


class CalibrationJob(models.Model):
    """An admin upload's calibration, run by the task worker (django-tasks, ``task_id``): who
    asked, how far it is. Metadata only: the zip itself is never stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calibration_jobs")
    task_id = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.CharField(max_length=150)
    user_id = models.IntegerField(null=True, blank=True, help_text="The admin, for the history.")
    target_apcer = models.FloatField(null=True, blank=True)
    images = models.PositiveIntegerField(help_text="Images in the zip.")
    started = models.PositiveIntegerField(default=0, help_text="Images judged so far.")

    class Meta:
        db_table = "accounts_calibrationjob"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"calibration job #{self.pk} of {self.tenant}"


class Evaluation(models.Model):
    """One run of ``manage.py evaluate``: the report, with the scores of the presentations
    that passed the gates, so a threshold can be derived later for any target APCER."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    folder = models.CharField(max_length=500)
    profile = models.CharField(max_length=16)
    threshold = models.FloatField(help_text="The threshold the report's figures were taken at.")
    bona_fide = models.PositiveIntegerField(help_text="Bona fide presentations scored.")
    attacks = models.PositiveIntegerField(help_text="Attack presentations scored.")
    auc = models.FloatField(null=True, blank=True)
    report = models.JSONField(help_text="ml.evaluate.Report.to_dict()")

    class Meta:
        db_table = "liveness_evaluation"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.profile} on {self.folder} at {self.created_at:%Y-%m-%d %H:%M}"

    @classmethod
    def latest_for(cls, profile: str) -> "Evaluation | None":
        return cls.objects.filter(profile=profile).first()

    def attack_scores(self) -> list[float]:
        return list(self.report["scores"]["attack"])

    def bona_fide_scores(self) -> list[float]:
        return list(self.report["scores"]["bona_fide"])
