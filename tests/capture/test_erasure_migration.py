"""capture 0009 and liveness 0008 on a database filled before them (SQLite and PostgreSQL): the
session's check id becomes a key on the same column, each session keeps its record's id; the
sessions whose record was deleted before (copies an erasure left) are deleted; the judges of
decided and expired challenges lose the face, a running one keeps it; and both migrate back."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import database_url
from tests.servers.processes import manage

BEFORE = [
    ("capture", "0008_session_defaults_in_database"),
    ("liveness", "0007_livenesscheck_tenant_time"),
]

FILL = (
    f"BEFORE = {BEFORE!r}\n"
    + """
from datetime import timedelta
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from ml import headturn
old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
t = old.get_model("accounts", "Tenant").objects.create(name="old")
check = old.get_model("liveness", "LivenessCheck").objects.create(tenant=t, latency_ms=1.0)
face = headturn.HeadTurnJudge(("turn_left", "turn_right", "look_up")).to_state()
now = timezone.now()
rows = {
    "copied": dict(selfie_check_id=check.pk, state="done"),
    "erased": dict(selfie_check_id=check.pk + 1000, state="done"),
    "passed": dict(challenge="passed", challenge_judge={"judge": face}),
    "running": dict(challenge="running", challenge_judge={"judge": face}),
    "expired": dict(challenge="running", challenge_judge={"judge": face}, expires_at=now),
}
for name, fields in rows.items():
    fields.setdefault("expires_at", now + timedelta(seconds=300))
    old.get_model("capture", "CaptureSession").objects.create(
        tenant=t, token_digest="d" * 64, selfie_request_id=name, **fields)
print(check.pk)
"""
)

CHECK = """
import json
from capture.models import CaptureSession
from ml import headturn
print(json.dumps({
    s.selfie_request_id: [s.selfie_check_id, sorted(set((s.challenge_judge or {}).get("judge", {}))
                          & set(headturn.FACE_FIELDS))]
    for s in CaptureSession.objects.all()
}))
"""

FACE = sorted(
    ["last_box", "last_landmarks", "reference", "ref_offset", "ref_frames", "ref_offsets"]
    + ["track", "reached"]
)


@pytest.mark.slow  # seven manage.py processes
@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_migrating_forward_keeps_each_sessions_check_and_forgets_what_erasure_left(
    vendor: str, tmp_path: Path
) -> None:
    with database_url(vendor, tmp_path, "facia_erasure_migration") as url:
        env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "DATABASE_URL": url}
        manage(env, "migrate", "--noinput", "-v0")
        for app, target in BEFORE:
            manage(env, "migrate", app, target, "--noinput", "-v0")
        check = int(manage(env, "shell", "-c", FILL).splitlines()[-1])
        manage(env, "migrate", "--noinput", "-v0")
        assert json.loads(manage(env, "shell", "-c", CHECK).splitlines()[-1]) == {
            "copied": [check, []],
            "passed": [None, []],
            "running": [None, FACE],
            "expired": [None, []],
        }
        for app, target in BEFORE:  # and back, each session's check id kept
            manage(env, "migrate", app, target, "--noinput", "-v0")
        back = "from capture.models import CaptureSession as S; print(S.objects.count())"
        assert manage(env, "shell", "-c", back).splitlines()[-1] == "4"
