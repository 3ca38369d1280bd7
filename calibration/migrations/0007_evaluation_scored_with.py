"""Each evaluation records the digest of the models and shipped score maps that scored it
(``ml.profiles.scoring_digest``): the tenant form's target APCER takes an uncalibrated
tenant's threshold only from an evaluation scored as today's checks are. Existing rows stay
blank, never matched: which models scored them is not known, and a threshold read off another
upgrade's scores would not hold (the form names the command that makes a new one)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calibration", "0006_evaluation_scored_as"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluation",
            name="scored_with",
            field=models.CharField(
                blank=True,
                default="",
                help_text="ml.profiles.scoring_digest of its profile when it ran (models and "
                "shipped maps); blank when unknown (never matched to an uncalibrated tenant "
                "then).",
                max_length=16,
            ),
        ),
    ]
