"""The calibration upload of a tenant's admin page."""

from django import forms


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
        help_text="Optional. Empty: the threshold where APCER = BPCER on the sample.",
    )
