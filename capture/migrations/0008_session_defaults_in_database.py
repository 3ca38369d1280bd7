"""The capture session's challenge_mode, selfie_request_id and token_calls get database
defaults ("", "", 0): the previous release's code, run on a database this release migrated (a
rollback), opens sessions without them, and POST /sessions answered 503 on NOT NULL. Back: the
defaults go. Expand/contract: docs/contributor/migrations.md."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('capture', '0007_session_token_calls'),
    ]

    operations = [
        migrations.AlterField(
            model_name='capturesession',
            name='challenge_mode',
            field=models.CharField(blank=True, db_default='', editable=False, max_length=16),
        ),
        migrations.AlterField(
            model_name='capturesession',
            name='selfie_request_id',
            field=models.CharField(blank=True, db_default='', editable=False, max_length=128),
        ),
        migrations.AlterField(
            model_name='capturesession',
            name='token_calls',
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
    ]
