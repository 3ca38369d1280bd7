"""The console's tenant form: a tenant's threshold from a target APCER on the last evaluation
that scored as the tenant does (Evaluation.latest_scoring_as)."""

import math
import shlex
from typing import Any

import numpy as np
from django import forms
from django.forms import ModelForm

from accounts.models import Tenant
from calibration.forms import TargetApcerField
from calibration.models import Evaluation
from ml import pad_metrics
from ml.evaluate import held_out_at_target, stored_report

THRESHOLD_PLACES = 4


class RoundedFloatField(forms.FloatField):
    """Shown rounded (a fitted threshold has 16 decimals); the stored value is kept when the
    operator leaves the rounded one as it was (the tenant admin writes only changed fields)."""

    def prepare_value(self, value: Any) -> Any:
        return round(value, THRESHOLD_PLACES) if isinstance(value, float) else value

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            submitted = self.to_python(data)
        except forms.ValidationError:
            return True
        if isinstance(initial, float) and submitted is not None:
            return round(initial, THRESHOLD_PLACES) != round(submitted, THRESHOLD_PLACES)
        return super().has_changed(initial, data)


def attacks_needed(target_percent: float) -> int:
    """The fewest attack presentations from which a threshold at ``target_percent`` APCER can
    be read: one accepted attack must be at most the target. With fewer, the threshold sits
    just above the highest attack it saw (one attack scored 0.2443 gave 0.2443 at 5 %), a
    figure that says nothing of the next attack."""
    return math.ceil(100 / target_percent - 1e-9)


def few_attacks_said(evaluation: int, target: float, needed: int, scored: int) -> str:
    """Why the target cannot be read from the evaluation, and the lowest target that can (the
    field takes at most 50 %: two attacks)."""
    lowest = math.ceil(100 / max(scored, 1) * 100) / 100
    return (
        f"A target APCER of {target:g} % needs at least {needed} attack presentations scored, so "
        f"that one accepted attack is at most {target:g} %; evaluation #{evaluation} scored "
        f"{scored}. Evaluate a folder with more attacks"
        + (f", or choose a target of at least {lowest:g} %." if scored >= 2 else ".")
    )


class TenantForm(ModelForm[Tenant]):
    """Adds "target APCER": the threshold is then derived from the last evaluation that scored
    as the tenant does (its profile, crop policy and calibration; the lowest threshold whose
    APCER on that evaluation meets the target), and reported with the figures of the
    evaluation's sources it was not chosen on."""

    target_apcer = TargetApcerField(
        help_text="Optional. Sets the threshold from the last <code>manage.py evaluate</code> "
        "scored as this tenant is (its profile, crop policy and calibration, if any): the lowest "
        "threshold that accepts at most this share of attack presentations.",
    )

    class Meta:
        model = Tenant
        fields = "__all__"
        field_classes = {"threshold": RoundedFloatField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.threshold if self.instance.pk else None
        field = self.fields.get("threshold")
        if field is not None and isinstance(stored, float):
            field.widget.attrs["title"] = f"Stored: {stored!r}"  # shown rounded to 4 places

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        target = cleaned.get("target_apcer")
        if target is None:
            return cleaned
        submitted = self.as_submitted(cleaned)
        evaluation = Evaluation.latest_scoring_as(submitted)
        if evaluation is None:
            raise forms.ValidationError(self.no_evaluation_said(submitted))
        attack = np.asarray(evaluation.attack_scores())
        if (needed := attacks_needed(target)) > attack.size:
            said = few_attacks_said(evaluation.pk, target, needed, attack.size)
            raise forms.ValidationError(said)
        threshold = min(pad_metrics.threshold_for_apcer(attack, target / 100), 1.0)
        cleaned["threshold"] = threshold
        stored = stored_report(evaluation.report, evaluation.threshold, evaluation.profile)
        held_out = held_out_at_target(stored, target / 100)
        self.derived = (evaluation, threshold, held_out)
        return cleaned

    def as_submitted(self, cleaned: dict[str, Any]) -> Tenant:
        """The tenant (its id: its own evaluations) with the profile and crop policy of this
        submission (what its scores will be once saved), its stored calibration (which
        applies only to its profile)."""
        return Tenant(
            pk=self.instance.pk,
            profile=cleaned.get("profile") or self.instance.profile,
            crop_policy=cleaned.get("crop_policy") or self.instance.crop_policy,
            calibration=self.instance.calibration if self.instance.pk else None,
        )

    # Whether the form's user may see calibrations (set by the admin's get_form): a user who
    # may not reads nothing of them on the tenant page, so this form's refusal must not say
    # whether the tenant is calibrated, nor by which calibration.
    shows_calibration = True

    def no_evaluation_said(self, tenant: Tenant) -> str:
        """Which evaluation ``tenant`` (as submitted) needs, and the command that makes it."""
        scores = "uncalibrated scores (the shipped maps)"
        command = f"manage.py evaluate DIR --profile {tenant.profile} --crop-policy "
        command += tenant.crop_policy
        calibrated = tenant.maps() is not None
        by_tenant = f"manage.py evaluate DIR --tenant {shlex.quote(self.instance.name)}"
        if not self.shows_calibration:
            scores, command = "this tenant's own scores", by_tenant
        elif calibrated:
            scores = f"the scores of its calibration #{(tenant.calibration or {}).get('id')}"
            command = by_tenant
        said = (
            f"No evaluation of the {tenant.profile} profile under crop policy "
            f"{tenant.crop_policy} with {scores} and attack presentations scored: a threshold "
            f"from any other would not hold for this tenant. Run {command} first."
        )
        shown = self.shows_calibration and not calibrated
        stale = Evaluation.stale_for(tenant) if shown else None
        if stale is not None:
            said += f" (Evaluation #{stale.pk} was scored with other models or score maps.)"
        return said
