"""Each evaluation records how its scores were made (``crop_policy``, ``calibrated``,
``calibration``): the tenant form's target APCER takes its threshold from an evaluation only
when those are the tenant's, and the profile alone matched an evaluation under another crop
policy or another tenant's calibration.

Existing rows take them from their stored report, which has kept the crop policy and the
calibration's maps (not its id: such a row is never matched to a calibrated tenant)."""

from typing import Any

from django.db import migrations, models


def fill(apps: Any, schema_editor: Any) -> None:
    Evaluation = apps.get_model("calibration", "Evaluation")
    for pk, report in Evaluation.objects.values_list("pk", "report").iterator():
        Evaluation.objects.filter(pk=pk).update(
            crop_policy=report.get("crop_policy") or "judge",
            calibrated=bool(report.get("calibration")),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("calibration", "0005_calibration_fingerprint"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluation",
            name="calibrated",
            field=models.BooleanField(
                default=False,
                help_text="Scored by a tenant's calibration (evaluate --tenant); else the "
                "shipped maps.",
            ),
        ),
        migrations.AddField(
            model_name="evaluation",
            name="calibration",
            field=models.PositiveIntegerField(
                blank=True,
                null=True,
                help_text="The id of the tenant calibration that scored it; null when "
                "uncalibrated, or when the report keeps the maps without their id (never "
                "matched to a tenant then).",
            ),
        ),
        migrations.AddField(
            model_name="evaluation",
            name="crop_policy",
            field=models.CharField(
                default="judge", help_text="The crop policy its gates judged under.", max_length=16
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
