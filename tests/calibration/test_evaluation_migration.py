"""calibration 0009: evaluations stored before it, whose reports name every image's file, the
data set's folder, the group folders (people, in a bank's cases) and the subjects, are stored
again without them, each linked to the tenant it was run as; the figures the tenant form
recomputes from them stay the same; and the migration goes back."""

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.calibration.test_evaluate import NAMES, PEOPLE, people_set
from tests.servers.processes import manage

BEFORE = [("calibration", "0008_job_beat"), ("accounts", "0012_tenant_rate_limit_at_least_one")]

# Rows as the command of before stored them (its report whole, the tenant's name in it): run as
# "Bank" (still there), as "Old name" with the calibration of a tenant renamed since, as "Gone
# co" (deleted since), without --tenant, and a report of before the ISO report.
FILL = """
import json
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
Tenant = old.get_model("accounts", "Tenant")
Calibration = old.get_model("calibration", "Calibration")
Evaluation = old.get_model("calibration", "Evaluation")
report = json.loads(open(PATH).read())
Tenant.objects.create(name="Bank")
renamed = Tenant.objects.create(name="Renamed co")
cal = Calibration.objects.create(tenant=renamed, created_by="op", origin="command",
    profile="fast", fingerprint="", params={"a": 1.0, "b": 0.0}, threshold=0.6,
    previous_threshold=0.5, bona_fide=5, attacks=5, figures={})
def stored(tenant, data=report, **fields):
    Evaluation.objects.create(folder=report["folder"], profile="fast", threshold=0.5,
        bona_fide=6, attacks=6, auc=0.9, report={**data, "tenant": tenant}, **fields)
stored("Bank")
stored("Old name", calibrated=True, calibration=cal.pk)
stored("Gone co")
stored("")
legacy = {"scores": report["scores"], "by_source": {"Jane-Doe-19800101": {"AUC": [0.9, 0.8, 1]},
    "phone": {"AUC": [0.7, 0.6, 0.8]}}, "samples": [
    {"file": "live/Jane-Doe-19800101/a.jpg", "label": "live", "species": "none",
     "failures": ["no_face"], "scores": {}, "source": "Jane-Doe-19800101"},
    {"file": "live/b.jpg", "label": "live", "species": "none", "failures": ["no_face"],
     "scores": {}, "source": "phone"}]}
stored("", legacy)
"""

CHECK = """
import json
from calibration.models import Evaluation
from ml.evaluate import held_out_at_target, stored_report
whole = json.loads(open(PATH).read())
expected = held_out_at_target(stored_report(whole, 0.5, "fast"), 0.25)
for e in Evaluation.objects.order_by("pk"):
    text = json.dumps(e.report)
    left = [n for n in NAMES if n in text]
    same = held_out_at_target(stored_report(e.report, 0.5, "fast"), 0.25) == expected
    sources = sorted({s["source"] for s in e.report["samples"]})
    named = sorted(e.report.get("by_source", ()))
    print(e.tenant.name if e.tenant else None, left, same, sources, named)
"""


@pytest.mark.slow  # six manage.py processes, and evaluate on 12 dev images
@pytest.mark.usefixtures("warm_engine")
def test_stored_evaluations_lose_their_names_and_find_their_tenant(tmp_path: Path) -> None:
    folder = people_set(tmp_path / "cases")
    out = StringIO()
    call_command("evaluate", str(folder), "--json", "--no-save", "--resamples", "100", stdout=out)
    report = tmp_path / "report.json"
    report.write_text(out.getvalue())  # what the command of before stored: its to_dict()
    assert all(name in out.getvalue() for name in (*PEOPLE, str(folder)))
    names = (*NAMES, str(folder))
    env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL", None)
    manage(env, "migrate", "--noinput", "-v0")
    for app, target in BEFORE:
        manage(env, "migrate", app, target, "--noinput", "-v0")
    given = f"PATH = {str(report)!r}\nBEFORE = {BEFORE!r}\nNAMES = {names!r}\n"
    manage(env, "shell", "-c", given + FILL)
    manage(env, "migrate", "--noinput", "-v0")
    folders = ["folder 1", "folder 2", "folder 3"]
    rows = [
        f"Bank [] True {folders} []",
        f"Renamed co [] True {folders} []",  # by its calibration
        f"None [] True {folders} []",  # its tenant is gone
        f"None [] True {folders} []",
        "None [] False ['folder 1', 'phone'] ['folder 1', 'phone']",  # no ISO report: no figure
    ]
    assert manage(env, "shell", "-c", given + CHECK).splitlines()[-5:] == rows
    manage(env, "migrate", "calibration", "0008_job_beat", "--noinput", "-v0")  # and back
    manage(env, "migrate", "--noinput", "-v0")
    assert manage(env, "shell", "-c", given + CHECK).splitlines()[-5:] == rows
