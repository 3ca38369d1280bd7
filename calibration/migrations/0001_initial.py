import django.db.models.deletion
from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

MOVED = {"calibration": "accounts", "calibrationjob": "accounts", "evaluation": "liveness"}


def move_content_types(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """The moved models keep their content types, so their permissions (and the groups and
    users holding them) and the admin history follow them."""
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model, old_app in MOVED.items():
        if not content_type.objects.using(db).filter(app_label="calibration", model=model).exists():
            content_type.objects.using(db).filter(app_label=old_app, model=model).update(
                app_label="calibration"
            )


def restore_content_types(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model, old_app in MOVED.items():
        content_type.objects.using(db).filter(app_label="calibration", model=model).update(
            app_label=old_app
        )


class Migration(migrations.Migration):
    """Calibration, CalibrationJob (from accounts) and Evaluation (from liveness), taken over
    in the state only: their tables, with their rows, keep their names (db_table)."""

    initial = True

    dependencies = [
        ("accounts", "0007_calibration_models_to_calibration"),
        ("liveness", "0004_evaluation_to_calibration"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Calibration",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("created_by", models.CharField(help_text="User (admin) or OS user (command).", max_length=150)),
                        ("origin", models.CharField(help_text="command or admin upload", max_length=32)),
                        ("profile", models.CharField(max_length=16)),
                        ("params", models.JSONField(help_text="Platt map: P(live) = sigmoid(a * z + b), z fused logit.")),
                        ("target_apcer", models.FloatField(blank=True, null=True)),
                        ("threshold", models.FloatField(help_text="The tenant threshold this calibration set.")),
                        ("previous_threshold", models.FloatField(help_text="Restored on revert.")),
                        ("bona_fide", models.PositiveIntegerField()),
                        ("attacks", models.PositiveIntegerField()),
                        ("refused", models.PositiveIntegerField(default=0, help_text="Images the gates refused.")),
                        ("figures", models.JSONField(help_text="before / after / cross_validated, with 95 % CIs.")),
                        ("reverted_at", models.DateTimeField(blank=True, null=True)),
                        ("tenant", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="calibrations", to="accounts.tenant")),
                    ],
                    options={"db_table": "accounts_calibration", "ordering": ["-created_at", "-pk"]},
                ),
                migrations.CreateModel(
                    name="CalibrationJob",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("task_id", models.CharField(blank=True, db_index=True, max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("created_by", models.CharField(max_length=150)),
                        ("user_id", models.IntegerField(blank=True, help_text="The admin, for the history.", null=True)),
                        ("target_apcer", models.FloatField(blank=True, null=True)),
                        ("images", models.PositiveIntegerField(help_text="Images in the zip.")),
                        ("started", models.PositiveIntegerField(default=0, help_text="Images judged so far.")),
                        ("tenant", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="calibration_jobs", to="accounts.tenant")),
                    ],
                    options={"db_table": "accounts_calibrationjob", "ordering": ["-created_at", "-pk"]},
                ),
                migrations.CreateModel(
                    name="Evaluation",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("folder", models.CharField(max_length=500)),
                        ("profile", models.CharField(max_length=16)),
                        ("threshold", models.FloatField(help_text="The threshold the report's figures were taken at.")),
                        ("bona_fide", models.PositiveIntegerField(help_text="Bona fide presentations scored.")),
                        ("attacks", models.PositiveIntegerField(help_text="Attack presentations scored.")),
                        ("auc", models.FloatField(blank=True, null=True)),
                        ("report", models.JSONField(help_text="ml.evaluate.Report.to_dict()")),
                    ],
                    options={"db_table": "liveness_evaluation", "ordering": ["-created_at", "-pk"]},
                ),
            ],
        ),
        migrations.RunPython(move_content_types, restore_content_types),
    ]
