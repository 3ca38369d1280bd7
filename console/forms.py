"""The console's tenant form: a tenant's threshold from a target APCER on the last evaluation
of its profile."""

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


class TenantForm(ModelForm[Tenant]):
    """Adds "target APCER": the threshold is then derived from the last evaluation of the
    tenant's profile (the lowest threshold whose APCER on that evaluation meets the target),
    and reported with the figures of the evaluation's sources it was not chosen on."""

    target_apcer = TargetApcerField(
        help_text="Optional. Sets the threshold from the last <code>manage.py evaluate</code> of "
        "this tenant's profile: the lowest threshold that accepts at most this share of attack "
        "presentations.",
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
        profile = cleaned.get("profile") or self.instance.profile
        if self.instance.pk and self.instance.maps() is not None:
            raise forms.ValidationError(
                "This tenant is calibrated: its scores are no longer those of the evaluation. "
                "Recalibrate with a target APCER, or revert it to uncalibrated first."
            )
        evaluation = Evaluation.latest_for(profile)
        if evaluation is None or not evaluation.attack_scores():
            raise forms.ValidationError(
                f"No evaluation of the {profile} profile with attack presentations yet; run "
                f"manage.py evaluate DIR --profile {profile} first."
            )
        attack = np.asarray(evaluation.attack_scores())
        threshold = min(pad_metrics.threshold_for_apcer(attack, target / 100), 1.0)
        cleaned["threshold"] = threshold
        stored = stored_report(evaluation.report, evaluation.threshold, evaluation.profile)
        held_out = held_out_at_target(stored, target / 100)
        self.derived = (evaluation, threshold, held_out)
        return cleaned
