"""The calibration upload of a tenant's admin page."""

from django import forms

from calibration.calibrate import MAX_SHADOW_DAYS


class CalibrationUploadForm(forms.Form):
    archive = forms.FileField(
        label="Zip with live/ and spoof/ folders",
        help_text="This tenant's own labelled captures (JPEG/PNG). Read in memory only; "
        "nothing is stored but the fitted calibration and its figures.",
    )
    target_apcer = forms.FloatField(
        label="Target APCER (%)",
        required=False,
        min_value=0.0,
        max_value=100.0,
        help_text="Optional: the threshold is set to meet it on the calibrated sample. "
        "Empty: the threshold is kept (unless the next box is ticked).",
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
