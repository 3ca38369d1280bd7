"""An evaluation keeps no file, folder or subject name (ml.anonymised), and one run as a tenant
is that tenant's (``Evaluation.tenant``), deleted with it: every image's path
(``live/Jane-Doe-19800101/apfol_1.png``), the data set's folder and the manifest's subject ids
were stored with the scores, shown in the admin, never deletable, and outlived the tenant.

Existing rows: each report is stored again in that form (the files it names tell which sources
were group folders), and the row is linked to the tenant it was run as, found by the
calibration that scored it, else by the name its report kept; a row whose tenant is gone stays
unlinked (no name left in it; a user with ``delete_evaluation`` may delete it). The folder
column goes. Migrating back brings an empty folder back and the tenant's name into the report;
the other names are not restored."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from ml.anonymised import anonymised


def tenant_of(apps: Any, calibration: int | None, report: dict[str, Any]) -> Any:
    """The tenant the evaluation was run as: its calibration's, else the one its report names."""
    Calibration = apps.get_model("calibration", "Calibration")
    Tenant = apps.get_model("accounts", "Tenant")
    found = Calibration.objects.filter(pk=calibration).first() if calibration else None
    if found is not None:
        return found.tenant
    name = report.get("tenant")
    return Tenant.objects.filter(name=name).first() if name else None


def strip(apps: Any, schema_editor: Any) -> None:
    Evaluation = apps.get_model("calibration", "Evaluation")
    rows = Evaluation.objects.values_list("pk", "calibration", "report")
    for pk, calibration, report in rows.iterator():
        Evaluation.objects.filter(pk=pk).update(
            report=anonymised(report), tenant=tenant_of(apps, calibration, report)
        )


def name_back(apps: Any, schema_editor: Any) -> None:
    """Back: the tenant's name in the report again, as the code of before kept it (so that
    migrating forward again links the row to it)."""
    Evaluation = apps.get_model("calibration", "Evaluation")
    for evaluation in Evaluation.objects.filter(tenant__isnull=False).select_related("tenant"):
        evaluation.report = {**evaluation.report, "tenant": evaluation.tenant.name}
        evaluation.save(update_fields=["report"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_tenant_rate_limit_at_least_one"),
        ("calibration", "0008_job_beat"),
    ]

    operations = [
        # a default, so that migrating back can add the column to existing rows
        migrations.AlterField(
            model_name="evaluation",
            name="folder",
            field=models.CharField(blank=True, default="", max_length=500),
        ),
        migrations.AddField(
            model_name="evaluation",
            name="tenant",
            field=models.ForeignKey(
                blank=True,
                help_text="The tenant it was run as (evaluate --tenant): deleted with it.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="evaluations",
                to="accounts.tenant",
            ),
        ),
        migrations.RunPython(strip, name_back),
        migrations.RemoveField(model_name="evaluation", name="folder"),
        migrations.AlterField(
            model_name="evaluation",
            name="report",
            field=models.JSONField(
                help_text="ml.evaluate.Report.to_dict() as ml.anonymised stores it: no file, "
                "folder or subject name."
            ),
        ),
    ]
