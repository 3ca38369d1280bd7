"""A session's ``selfie_check_id`` becomes a key to its check record (same column, nullable as
before, no constraint, DO_NOTHING: liveness.models.CheckQuerySet deletes the session with the
record), and what earlier code left behind is deleted:

- the sessions whose check record is already gone (deleted by an operator or prune_checks
  before the record took its session with it): the copy of a verdict whose erasure was asked;
- the face (box, landmarks, poses) in the judges of decided challenges and of sessions past
  their expiry, which nothing reads again.

Both frozen as written (FACE, JudgeWithoutFace), not today's functions. Back, the column is a
plain number again; nothing deleted comes back. Expand/contract: the previous release reads
and writes the same column (docs/contributor/migrations.md)."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Exists, F, Func, JSONField, OuterRef, Q
from django.utils import timezone

# The face in ml.headturn's judge state (its FACE_FIELDS when this was written).
FACE = (
    "last_box",
    "last_landmarks",
    "reference",
    "ref_offset",
    "ref_frames",
    "ref_offsets",
    "track",
    "reached",
)


class JudgeWithoutFace(Func):
    """``challenge_judge`` without its judge's FACE keys: SQLite's json_remove, PostgreSQL's
    jsonb ``-`` (capture.challenge.JudgeWithoutFace as it was written)."""

    output_field = JSONField()

    def __init__(self) -> None:
        super().__init__(F("challenge_judge"))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        paths = ", ".join(["%s"] * len(FACE))
        return f"json_remove({column}, {paths})", (*params, *(f"$.judge.{k}" for k in FACE))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"jsonb_set({column}, '{{judge}}', ({column} -> 'judge') - %s::text[])"
        return sql, (*params, *params, list(FACE))


def forget(apps: Any, schema_editor: Any) -> None:
    CaptureSession = apps.get_model("capture", "CaptureSession")
    LivenessCheck = apps.get_model("liveness", "LivenessCheck")
    record = LivenessCheck.objects.filter(pk=OuterRef("selfie_check_id"))
    CaptureSession.objects.filter(selfie_check__isnull=False).exclude(Exists(record)).delete()
    done = Q(challenge__in=["passed", "failed"]) | Q(expires_at__lte=timezone.now())
    with_face = Q(challenge_judge__judge__has_any_keys=list(FACE))
    CaptureSession.objects.filter(done, with_face).update(challenge_judge=JudgeWithoutFace())


class Migration(migrations.Migration):
    dependencies = [
        ("capture", "0008_session_defaults_in_database"),
        ("liveness", "0008_idempotent_answer_check"),
    ]

    operations = [
        # The field renamed in the state only (its column named as it is), then made a key
        # on the same column: no data copied, the id of each session's record kept.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="capturesession",
                    name="selfie_check_id",
                    field=models.PositiveBigIntegerField(
                        blank=True, db_column="selfie_check_id", editable=False, null=True
                    ),
                ),
                migrations.RenameField(
                    model_name="capturesession",
                    old_name="selfie_check_id",
                    new_name="selfie_check",
                ),
            ],
        ),
        migrations.AlterField(
            model_name="capturesession",
            name="selfie_check",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="capture_sessions",
                to="liveness.livenesscheck",
            ),
        ),
        migrations.RunPython(forget, migrations.RunPython.noop),
    ]
