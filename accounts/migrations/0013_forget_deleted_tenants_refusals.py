"""The daily refusal counts of tenants deleted before ``accounts.models.forget_refusals`` (a
tenant's deletion now takes them with it): kept by tenant id, they outlived their tenant,
shown as "deleted tenant #N". Back, nothing comes back."""

from typing import Any

from django.db import migrations


def forget_orphans(apps: Any, schema_editor: Any) -> None:
    Tenant = apps.get_model("accounts", "Tenant")
    Refusal = apps.get_model("guard", "Refusal")
    tenants = Tenant.objects.values("pk")
    Refusal.objects.exclude(tenant_id=0).exclude(tenant_id__in=tenants).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_tenant_rate_limit_at_least_one"),
        ("guard", "0002_refusal"),
    ]

    operations = [migrations.RunPython(forget_orphans, migrations.RunPython.noop)]
