"""The calibration upload of a tenant's admin page."""

from typing import Any

from django import forms

from calibration.calibrate import MAX_SHADOW_DAYS, MAX_TARGET_APCER, target_apcer_refused


class TargetApcerField(forms.FloatField):
    """A target APCER in percent, as the admin's forms take it: the bound of the commands'
    fraction (``target_apcer_refused``), said in percent."""

    def __init__(self, help_text: str) -> None:
        top = f"{MAX_TARGET_APCER * 100:g}"
        super().__init__(label="Target APCER (%)", required=False, help_text=help_text)
        self.widget.attrs.update({"min": "0", "max": top, "step": "any"})

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and target_apcer_refused(value / 100):
            raise forms.ValidationError(
                f"Above 0 and at most {MAX_TARGET_APCER * 100:g}: a percentage of the attacks "
                "accepted (5 = 5 %).",
                code="target_apcer",
            )


class CalibrationUploadForm(forms.Form):
    archive = forms.FileField(
        label="Zip with live/ and spoof/ folders",
        help_text="This tenant's own labelled captures (JPEG/PNG). Read in memory only; "
        "nothing is stored but the fitted calibration and its figures.",
    )
    target_apcer = TargetApcerField(
        help_text="Optional: the threshold is set to meet it on the calibrated sample. "
        "Empty: the threshold is kept (unless the next box is ticked)."
    )
    equal_error = forms.BooleanField(
        label="Threshold where APCER = BPCER",
        required=False,
        help_text="Without a target APCER: set the threshold where APCER = BPCER on the sample.",
    )
    shadow_days = forms.IntegerField(
        label="Shadow for (days)",
        required=False,
        min_value=1,
        max_value=MAX_SHADOW_DAYS,
        help_text="Optional: store it as a candidate beside the active calibration for this many "
        "days; every check then records both verdicts and this page counts the ones that would "
        "flip. Promote or discard it from the tenant page. Empty: it becomes active at once.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("target_apcer") is not None and cleaned.get("equal_error"):
            raise forms.ValidationError(
                "Either a target APCER or the threshold where APCER = BPCER, not both: the "
                "threshold is set one way."
            )
        return cleaned
