"""An upgrade loses nothing: a database at the earliest state the migrations go back to, filled
through that state's historical models (tenants with quotas and a calibration, hash_ids,
checks, a capture session, an admin account and its history entries), migrates forward to
this release with every row kept and every value still read as it was written, on SQLite and
on PostgreSQL. Every migration goes back: our apps reach zero, so the earliest state holding
data is each app's first migration (accounts' squashed 0001 to 0004, where calibrations were
still accounts'; calibration's app not yet there)."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import database_url
from tests.servers.processes import manage

EARLIEST = [
    ("accounts", "0001_initial_to_calibration"),
    ("liveness", "0001_initial"),
    ("capture", "0001_initial"),
    ("guard", "0001_initial"),
]
# Unapplied in this order, each taking what depends on it.
BACK = [("calibration", "zero"), *EARLIEST]

# Rows that migrate itself adds (the new models' content types and permissions) or writes.
GROW = {"django_content_type", "auth_permission", "django_migrations"}
SECRET = "u" * 43  # a hash_id as issued: 43 URL-safe characters
PASSWORD = "Old-Release-Passw0rd"

TABLES = """
from django.db import connection
def tables():
    with connection.cursor() as cursor:
        names = sorted(connection.introspection.table_names(cursor))
        found = {}
        for name in names:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(name)}")
            found[name] = cursor.fetchone()[0]
        return found
"""

FILL = (
    TABLES
    + """
import hashlib, json
from datetime import timedelta
from django.contrib.auth.hashers import make_password
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
old = MigrationExecutor(connection).loader.project_state(EARLIEST).apps
Tenant = old.get_model("accounts", "Tenant")
acme = Tenant.objects.create(name="acme", request_limit=10, requests_used=3,
    rate_limit_per_minute=60, threshold=0.62, profile="thorough", crop_policy="refuse")
beta = Tenant.objects.create(name="beta", requests_used=2)
cal = old.get_model("accounts", "Calibration").objects.create(tenant=acme, created_by="op",
    origin="command", profile="thorough", params={"a": 1.5, "b": -0.2}, threshold=0.62,
    previous_threshold=0.5, bona_fide=9, attacks=8, figures={"after": {}})
acme.calibration = {"id": cal.pk, "a": 1.5, "b": -0.2, "profile": "thorough"}
acme.save()
digest = hashlib.sha256(SECRET.encode()).hexdigest()
old.get_model("accounts", "HashId").objects.create(tenant=acme, prefix=SECRET[:8], digest=digest)
Check = old.get_model("liveness", "LivenessCheck")
for tenant, units in ((acme, 3), (beta, 2)):
    for i in range(units):
        Check.objects.create(tenant=tenant, is_live=True, score=0.9, latency_ms=40.0,
            request_id=f"{tenant.name}-{i}")
Check.objects.create(tenant=acme, latency_ms=12.0, request_id="acme-refused",
    refused_code="face_too_small")
now = timezone.now()
old.get_model("capture", "CaptureSession").objects.create(tenant=beta, token_digest="d" * 64,
    expires_at=now + timedelta(seconds=300), state="done", is_live=True, score=0.8,
    capture="frame", frames=3, finished_at=now)
old.get_model("guard", "Counter").objects.create(scope="auth", subject="10.0.0.0/24",
    bucket=1_700_000_000, hits=4)
# Django's own apps are not migrated back: their models are this release's.
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
op = User.objects.create(username="op", is_staff=True, is_superuser=True,
    password=make_password(PASSWORD))
ct = ContentType.objects.get(app_label="accounts", model="tenant")
LogEntry.objects.create(user=op, content_type=ct,
    object_id=str(acme.pk), object_repr="acme", action_flag=2,
    change_message="Reset quota (3 used before).", action_time=now)
print(json.dumps(tables()))
"""
)

CHECK = (
    TABLES
    + """
import json
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from accounts.models import HashId, Tenant
from calibration.models import Calibration
from capture.models import CaptureSession
acme = Tenant.objects.get(name="acme")
cal = Calibration.objects.get()
session = CaptureSession.objects.get()
print(json.dumps({
    "acme": [acme.request_limit, acme.rate_limit_per_minute, acme.threshold, acme.profile,
        acme.crop_policy, acme.calibration["id"] == cal.pk, cal.params, acme.maps() is not None],
    "hash_id": HashId.tenant_for(SECRET).name,
    "units": {t.name: [t.requests_used, t.checks.filter(refused_code="").count(),
        t.checks.count()] for t in Tenant.objects.order_by("name")},
    "session": [session.tenant.name, session.state, session.is_live, session.score,
        session.frames],
    "history": [[e.user.username, e.get_edited_object().name, e.change_message]
        for e in LogEntry.objects.all()],
    "password": User.objects.get(username="op").check_password(PASSWORD),
    "tables": tables(),
}))
"""
)


def script(body: str) -> str:
    return f"EARLIEST = {EARLIEST!r}\nSECRET = {SECRET!r}\nPASSWORD = {PASSWORD!r}\n{body}"


@pytest.mark.slow  # seven manage.py processes
@pytest.mark.parametrize("vendor", ["sqlite", "postgresql"])
def test_the_earliest_database_migrates_to_this_release_with_nothing_lost(
    vendor: str, tmp_path: Path
) -> None:
    with database_url(vendor, tmp_path, "upgrade") as url:
        env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "DATABASE_URL": url}
        manage(env, "migrate", "--noinput", "-v0")
        for app, target in BACK:
            manage(env, "migrate", app, target, "--noinput", "-v0")
        before = json.loads(manage(env, "shell", "-c", script(FILL)).splitlines()[-1])
        manage(env, "migrate", "--noinput", "-v0")
        after = json.loads(manage(env, "shell", "-c", script(CHECK)).splitlines()[-1])
    tables = after.pop("tables")
    # Started before a later migration created its table.
    assert "liveness_idempotentanswer" not in before and "liveness_idempotentanswer" in tables
    kept = {name: count for name, count in before.items() if name not in GROW}
    assert {name: tables.get(name) for name in kept} == kept
    assert after == {
        "acme": [10, 60, 0.62, "thorough", "refuse", True, {"a": 1.5, "b": -0.2}, True],
        "hash_id": "acme",
        "units": {"acme": [3, 3, 4], "beta": [2, 2, 2]},
        "session": ["beta", "done", True, 0.8, 3],
        "history": [["op", "acme", "Reset quota (3 used before)."]],
        "password": True,
    }
