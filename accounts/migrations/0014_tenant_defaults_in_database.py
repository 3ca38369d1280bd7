"""Tenant.challenge_band gets a database default (0.75, its Python default): the previous
release's code, run on a database this release migrated (a rollback), inserts tenants without
the column, and create_tenant failed on NOT NULL. Back: the default goes; the value stays.
Expand/contract: docs/contributor/migrations.md."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0013_forget_deleted_tenants_refusals'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tenant',
            name='challenge_band',
            field=models.FloatField(db_default=0.75, default=0.75, help_text='when_unsure: a selfie whose score lies within this many logits of the threshold (either side) is decided by the head-turn challenge.', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(10.0)]),
        ),
    ]
