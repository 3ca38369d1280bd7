from django.db import migrations


class Migration(migrations.Migration):
    """Calibration and CalibrationJob now belong to the calibration app: removed from this
    app's state only; their tables stay (calibration.0001_initial takes them over)."""

    dependencies = [
        ("accounts", "0006_calibrationjob"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="CalibrationJob"),
                migrations.DeleteModel(name="Calibration"),
            ],
            database_operations=[],
        ),
    ]
