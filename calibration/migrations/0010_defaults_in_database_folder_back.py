"""The columns the previous release's code does not write get database defaults, and the
evaluation's folder column, which 0009 dropped, is back (empty, default ""), so that code runs
on a database this release migrated (a rollback): its calibrate failed on the NOT NULL
fingerprint (now "", a fingerprint never applied), its evaluate on the NOT NULL calibrated,
crop_policy and scored_with and on the missing folder. This release never writes folder; the
release after next drops it (the next one still has to leave it for this one). Back: the
defaults go and folder is dropped again, as 0009 left it. Expand/contract:
docs/contributor/migrations.md."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calibration', '0009_evaluation_without_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='evaluation',
            name='folder',
            field=models.CharField(blank=True, db_default='', editable=False, max_length=500),
        ),
        migrations.AlterField(
            model_name='calibration',
            name='fingerprint',
            field=models.CharField(db_default='', help_text="ml.profiles.fingerprint of the profile it was fitted on: applied only while the profile's models are the same.", max_length=16),
        ),
        migrations.AlterField(
            model_name='evaluation',
            name='calibrated',
            field=models.BooleanField(db_default=False, default=False, help_text="Scored by a tenant's calibration (evaluate --tenant); else the shipped maps."),
        ),
        migrations.AlterField(
            model_name='evaluation',
            name='crop_policy',
            field=models.CharField(db_default='judge', default='judge', help_text='The crop policy its gates judged under.', max_length=16),
        ),
        migrations.AlterField(
            model_name='evaluation',
            name='scored_with',
            field=models.CharField(blank=True, db_default='', default='', help_text='ml.profiles.scoring_digest of its profile when it ran (models and shipped maps); blank when unknown (never matched to an uncalibrated tenant then).', max_length=16),
        ),
    ]
