#!/usr/bin/env bash
# The calibration app's move on an existing database: a SQLite database migrated and filled by
# the code of REV (default: the commit before the move), then migrated forward by this tree.
# Prints the rows and permissions before and after; exits non-zero when any is lost.
set -euo pipefail
REV=${1:-b6d5136}  # the commit before the move
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/old" "$WORK/var"
git -C "$ROOT" archive "$REV" | tar -x -C "$WORK/old"
export FACIA_VAR_DIR="$WORK/var"
(cd "$WORK/old" && "$PY" manage.py migrate --noinput -v0 && "$PY" manage.py shell -c '
from django.contrib.auth.models import Group, Permission
from accounts.models import Calibration, CalibrationJob, Tenant
from liveness.models import Evaluation
t = Tenant.objects.create(name="old")
c = Calibration.objects.create(tenant=t, created_by="op", origin="command", profile=t.profile,
    params={"a": 1.5, "b": -0.2}, threshold=0.61, previous_threshold=0.5, bona_fide=9,
    attacks=8, figures={"after": {}})
c.activate()
CalibrationJob.objects.create(tenant=t, created_by="op", images=17, started=3)
Evaluation.objects.create(folder="/dev", profile="fast", threshold=0.5, bona_fide=4,
    attacks=5, auc=0.9, report={"scores": {"attack": [0.1], "bona_fide": [0.9]}})
g = Group.objects.create(name="evaluators")
g.permissions.set(Permission.objects.filter(codename__in=["view_calibration", "view_evaluation", "view_calibrationjob"]))
print("before:", Calibration.objects.count(), CalibrationJob.objects.count(), Evaluation.objects.count(),
      sorted(f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()))
')
cd "$ROOT" && "$PY" manage.py migrate --noinput -v0 && "$PY" manage.py shell -c '
from django.contrib.auth.models import Group
from accounts.models import Tenant
from calibration.models import Calibration, CalibrationJob, Evaluation, revert_calibration
t = Tenant.objects.get(name="old")
perms = sorted(f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="evaluators").permissions.all())
print("after:", Calibration.objects.count(), CalibrationJob.objects.count(), Evaluation.objects.count(), perms)
c = Calibration.objects.get()
assert (c.tenant, c.params, c.threshold) == (t, {"a": 1.5, "b": -0.2}, 0.61)
assert t.calibration["id"] == c.pk and t.maps() is not None and t.threshold == 0.61
assert list(t.calibrations.all()) == [c] and t.calibration_jobs.get().images == 17
assert Evaluation.latest_for("fast").attack_scores() == [0.1]
assert perms == ["calibration.view_calibration", "calibration.view_calibrationjob", "calibration.view_evaluation"], perms
assert revert_calibration(t) == 0.61 and Tenant.objects.get(pk=t.pk).threshold == 0.5
Calibration.objects.create(tenant=t, created_by="op", origin="command", profile=t.profile,
    params={"a": 1.0, "b": 0.0}, threshold=0.7, previous_threshold=0.5, bona_fide=9, attacks=8,
    figures={}).activate()
assert Calibration.objects.count() == 2  # the id sequence goes on after the old rows
t.delete()
assert not Calibration.objects.exists() and not CalibrationJob.objects.exists()
print("rows, links and permissions kept")
'
