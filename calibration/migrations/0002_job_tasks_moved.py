from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

OLD, NEW = "console.jobs.", "calibration.jobs."


def rename(old: str, new: str, apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Each task row names its function and exception by import path: the calibration jobs run
    before the move would no longer import (the admin's calibration page read them)."""
    rows = apps.get_model("django_tasks_database", "DBTaskResult").objects.using(
        schema_editor.connection.alias
    )
    for field in ("task_path", "exception_class_path"):
        for row in rows.filter(**{f"{field}__startswith": old}).only("pk", field):
            setattr(row, field, new + getattr(row, field)[len(old) :])
            row.save(update_fields=[field])


def forward(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    rename(OLD, NEW, apps, schema_editor)


def backward(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    rename(NEW, OLD, apps, schema_editor)


class Migration(migrations.Migration):
    """The calibration job runner moved from console.jobs to calibration.jobs."""

    dependencies = [
        ("calibration", "0001_initial"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(forward, backward)]
