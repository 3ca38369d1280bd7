"""Each calibration records which models it was fitted on (``Calibration.fingerprint``, and
"fingerprint" in its tenant's ``calibration`` / ``shadow_calibration`` copies): a map of one
model set's fused logits, applied to another's after an upgrade, gave wrong scores silently.

Existing rows and copies get the fingerprint of the models shipped with this migration, frozen
here as written (``ml.profiles.fingerprint`` at the commit that added it, 0a2d7bce): they were
fitted on those models, so they keep applying while the models are the same. Not the live
function: a database from before this migration upgraded straight to a later release that
changes a profile's models would have its old calibrations stamped with the new models'
fingerprint, and applied to a logit they were not fitted on. Migrating back drops the field;
the copies' extra key is ignored by the code of before."""

from typing import Any

from django.db import migrations, models

# ml.profiles.fingerprint of each profile shipped with this migration (computed with the code
# of commit 0a2d7bce, which added it); a profile not listed was never shipped then.
FITTED_ON = {"fast": "11c78a91cd2c261d", "thorough": "d910b22ce34ff4c1"}


def stamped(profile: str) -> str:
    """The fingerprint ``profile``'s calibrations were fitted on; "" for one not shipped then
    (never applied)."""
    return FITTED_ON.get(profile, "")


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
