"""Each calibration records which models it was fitted on (``Calibration.fingerprint``, and
"fingerprint" in its tenant's ``calibration`` / ``shadow_calibration`` copies): a map of one
model set's fused logits, applied to another's after an upgrade, gave wrong scores silently.

Existing rows and copies get the fingerprint of the code that runs this migration: they were
fitted on the models shipped until now, which this migration ships with, so they keep applying.
Migrating back drops the field; the copies' extra key is ignored by the code of before."""

from typing import Any

from django.db import migrations, models

from ml.profiles import PROFILES, fingerprint


def stamped(profile: str) -> str:
    """The current fingerprint of ``profile``; "" for one no longer shipped (never applied)."""
    return fingerprint(profile) if profile in PROFILES else ""


def fill(apps: Any, schema_editor: Any) -> None:
    Calibration = apps.get_model("calibration", "Calibration")
    Tenant = apps.get_model("accounts", "Tenant")
    for profile in Calibration.objects.values_list("profile", flat=True).distinct():
        Calibration.objects.filter(profile=profile).update(fingerprint=stamped(profile))
    for tenant in Tenant.objects.all():
        copies = [c for c in (tenant.calibration, tenant.shadow_calibration) if c]
        for copy in copies:
            copy["fingerprint"] = stamped(str(copy.get("profile")))
        if copies:
            tenant.save(update_fields=["calibration", "shadow_calibration"])


class Migration(migrations.Migration):
    dependencies = [
        ("calibration", "0004_evaluation_folder_without_controls"),
        ("accounts", "0011_tenant_challenge_band"),
    ]

    operations = [
        migrations.AddField(
            model_name="calibration",
            name="fingerprint",
            field=models.CharField(
                default="",
                help_text="ml.profiles.fingerprint of the profile it was fitted on: applied "
                "only while the profile's models are the same.",
                max_length=16,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
