from django.db import migrations


class Migration(migrations.Migration):
    """Evaluation now belongs to the calibration app: removed from this app's state only; its
    table stays (calibration.0001_initial takes it over)."""

    dependencies = [
        ("liveness", "0003_livenesscheck_capture"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Evaluation")],
            database_operations=[],
        ),
    ]
