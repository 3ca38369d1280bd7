"""A session keeps the challenge rule it was opened under (mode, and a when_unsure band). A
session already there gets its tenant's rule as it stands at the migration: the best record of
the rule it was opened under."""

from typing import Any

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def rule_from_tenant(apps: Any, schema_editor: Any) -> None:
    Session = apps.get_model("capture", "CaptureSession")
    Tenant = apps.get_model("accounts", "Tenant")
    tenant = Tenant.objects.filter(pk=OuterRef("tenant_id"))
    Session.objects.update(challenge_mode=Subquery(tenant.values("challenge")[:1]))
    Session.objects.filter(challenge_mode="when_unsure").update(
        challenge_band=Subquery(tenant.values("challenge_band")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_tenant_challenge_band"),
        ("capture", "0004_session_selfie_check"),
    ]

    operations = [
        migrations.AddField(
            model_name="capturesession",
            name="challenge_mode",
            field=models.CharField(blank=True, editable=False, max_length=16),
        ),
        migrations.AddField(
            model_name="capturesession",
            name="challenge_band",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(rule_from_tenant, migrations.RunPython.noop),
    ]
