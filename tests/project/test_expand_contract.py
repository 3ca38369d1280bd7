"""Expand/contract (docs/contributor/migrations.md): the previous release's code runs on a
database this release migrated. A rolling upgrade serves with both releases at once (the old
pods until the last is replaced, after the migration Job), and a rollback puts the previous
image back on the migrated database: its writes must succeed and its reads find their
columns. Without the rule, the migrations after the release of 2 Dec 2026 added NOT NULL
columns it does not write (its create_tenant and calibrate exited 1, its POST /sessions
answered 503) and dropped one it reads (an evaluation's folder: its evaluate exited 1).

The previous release's code is taken from git (``git archive``); the rule over the
migrations themselves needs no git."""

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from ml.install import install_models
from tests.conftest import LIVE_JPG, REPO, database_url, skip_or_fail, subset_of_dev
from tests.release import KEPT_IN_THE_DATABASE, PREVIOUS_RELEASE, RELEASE_LEAVES

Column = tuple[str, bool, bool]  # name, nullable, with a database default


def _columns(state: ProjectState) -> dict[str, dict[str, Column]]:
    """Each table of the service's apps in ``state``: its columns by name."""
    tables: dict[str, dict[str, Column]] = {}
    for model in state.apps.get_models():
        if model._meta.app_label in RELEASE_LEAVES:
            columns = (
                (str(field.column), field.null, field.db_default is not models.NOT_PROVIDED)
                for field in model._meta.concrete_fields
            )
            tables[model._meta.db_table] = {column[0]: column for column in columns}
    return tables


def broken_for_the_previous_release(
    before: dict[str, dict[str, Column]],
    after: dict[str, dict[str, Column]],
    kept: frozenset[str] = KEPT_IN_THE_DATABASE,
) -> list[str]:
    """What the previous release's code (its tables ``before``) would fail on in a database
    whose tables are ``after``: a table or column gone (its reads name it; ``kept``: gone from
    the models only), a column it may write NULL to made NOT NULL, a NOT NULL column it does
    not know without a database default (its INSERTs leave it out). A type or length change
    is not seen here."""
    broken = []
    for table, columns in before.items():
        if table not in after:
            broken.append(f"{table}: dropped")
            continue
        now = after[table]
        for name, (_, nullable, _) in columns.items():
            if name not in now:
                if f"{table}.{name}" not in kept:
                    broken.append(f"{table}.{name}: dropped")
            elif nullable and not now[name][1]:
                broken.append(f"{table}.{name}: made NOT NULL")
        for name, (_, nullable, defaulted) in now.items():
            if name not in columns and not (nullable or defaulted):
                broken.append(f"{table}.{name}: added NOT NULL without db_default")
    return broken


def test_every_column_the_previous_release_uses_is_kept_and_every_new_one_defaulted() -> None:
    """The rule, over the migrations alone: comparing the schema at the previous release's
    migrations with the one at today's finds what its code would fail on."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    release = loader.project_state(list(RELEASE_LEAVES.items()), at_end=True)
    today = loader.project_state()
    assert broken_for_the_previous_release(_columns(release), _columns(today)) == []


def test_the_rule_finds_what_breaks_the_previous_release() -> None:
    before = {"t": {"kept": ("kept", False, False), "nullable": ("nullable", True, False)}}
    after = {
        "t": {
            "nullable": ("nullable", False, False),
            "new": ("new", False, False),
            "defaulted": ("defaulted", False, True),
            "optional": ("optional", True, False),
        }
    }
    assert broken_for_the_previous_release(before, after) == [
        "t.kept: dropped",
        "t.nullable: made NOT NULL",
        "t.new: added NOT NULL without db_default",
    ]
    assert broken_for_the_previous_release(before, {}) == ["t: dropped"]
    only_nullable = {"t": {"nullable": ("nullable", True, False)}}
    assert broken_for_the_previous_release(before, only_nullable) == ["t.kept: dropped"]
    assert broken_for_the_previous_release(before, only_nullable, frozenset({"t.kept"})) == []


def _git(*args: str) -> bytes:
    """``git ARGS`` in this checkout; skips (fails under CI) where git or the commit is not
    there (an exported tree, a shallow clone)."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, timeout=120)
    except FileNotFoundError:
        skip_or_fail("git is not installed: the previous release's code cannot be read")
    if done.returncode != 0:
        skip_or_fail(f"git {args[0]} {PREVIOUS_RELEASE[:7]}: {done.stderr.decode().strip()}")
    return done.stdout


def test_the_release_leaves_are_that_releases_migrations() -> None:
    listed = _git("ls-tree", "-r", "--name-only", PREVIOUS_RELEASE).decode().splitlines()
    latest: dict[str, str] = {}
    for path in listed:
        parts = Path(path).parts
        if len(parts) == 3 and parts[1] == "migrations" and parts[2][:4].isdigit():
            latest[parts[0]] = max(latest.get(parts[0], ""), Path(parts[2]).stem)
    assert latest == RELEASE_LEAVES


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's code, as ``git archive`` exports it."""
    tree = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=io.BytesIO(_git("archive", PREVIOUS_RELEASE))) as archive:
        archive.extractall(tree, filter="data")
    return tree


# Run by `manage.py shell -c` in either release: its HTTP paths through Django's test client
# (the release's own middleware, views and models), optionally its commands, then every
# admin page of the service's apps for every row, whichever release wrote it.
SCRIPT = """
import base64, io, json
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

said = {}
client = Client(HTTP_HOST="localhost")
with open(LIVE, "rb") as image:
    selfie = base64.b64encode(image.read()).decode()

def step(name, run):
    try:
        said[name] = run()
    except Exception as exc:
        said[name] = f"{type(exc).__name__}: {exc}"

def post(path, body, **extra):
    return client.post(path, json.dumps(body), content_type="application/json", **extra)

def session():
    opened = post("/sessions", {"hash_id": HASH_ID})
    if opened.status_code != 201:
        return [opened.status_code]
    sid, token = opened.json()["session_id"], opened.json()["token"]
    sent = post(f"/sessions/{sid}/selfie", {"selfie_image": selfie},
        HTTP_AUTHORIZATION=f"Bearer {token}")
    read = client.get(f"/sessions/{sid}", HTTP_X_HASH_ID=HASH_ID)
    return [opened.status_code, sent.status_code, read.status_code, read.json().get("state")]

def command(*args):
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    return "ok"

def admin_pages():
    client.force_login(User.objects.create_superuser(USER, password=None))
    failed = {}
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label not in APPS:
            continue
        name = f"admin:{meta.app_label}_{meta.model_name}"
        urls = [reverse(f"{name}_changelist")]
        urls += [reverse(f"{name}_change", args=[pk])
            for pk in model._default_manager.values_list("pk", flat=True)]
        for url in urls:
            if (status := client.get(url).status_code) != 200:
                failed[url] = status
    return failed

step("liveness",
    lambda: post("/liveness", {"hash_id": HASH_ID, "selfie_image": selfie}).status_code)
step("status_check", lambda: client.get("/status_check").status_code)  # engine warm now
step("session", session)
if FOLDER:
    step("calibrate", lambda: command("calibrate", TENANT, FOLDER))
    step("evaluate", lambda: command("evaluate", FOLDER, "--tenant", TENANT, "--resamples", "100"))
step("admin", admin_pages)
print(json.dumps(said))
"""
SERVED = {"status_check": 200, "liveness": 201, "session": [201, 202, 200, "done"], "admin": {}}


def _last_record(output: str) -> str:
    """A failed command's one JSON error record (facia_site.startup): its message."""
    for line in reversed(output.strip().splitlines()):
        try:
            return str(json.loads(line)["message"])
        except (ValueError, KeyError, TypeError):
            continue
    return output[-3000:]


def manage_in(tree: Path, env: dict[str, str], *args: str) -> str:
    """``manage.py ARGS`` of ``tree`` with this interpreter; its output, or the test fails
    with its error record."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{tree.name}: {_last_record(done.stdout + done.stderr)}"
    return done.stdout


def run_paths(tree: Path, env: dict[str, str], tenant: str, hash_id: str, **more: Any) -> Any:
    """SCRIPT in ``tree`` as ``tenant``; what each step answered."""
    names = {
        "APPS": list(RELEASE_LEAVES),
        "LIVE": str(LIVE_JPG),
        "TENANT": tenant,
        "HASH_ID": hash_id,
        "USER": f"op-{tenant}-{tree.name}",
        "FOLDER": "",
        **more,
    }
    code = "".join(f"{name} = {value!r}\n" for name, value in names.items()) + SCRIPT
    return json.loads(manage_in(tree, env, "shell", "-c", code).splitlines()[-1])


def create_tenant(tree: Path, env: dict[str, str], name: str) -> str:
    """A tenant made by ``tree``'s create_tenant; its hash_id (the last line)."""
    return manage_in(tree, env, "create_tenant", name, "--limit", "100").strip().splitlines()[-1]


@pytest.fixture
def release_env(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Both releases' environment: one fresh database of the test's vendor, the installed
    models, bounded waits of 30 s (a loaded machine is not the subject)."""
    install_models(settings.MODEL_SOURCE, settings.MODEL_DIR)
    with database_url(request.param, tmp_path, "expand") as url:
        yield {
            **os.environ,
            "FACIA_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": url,
            "MODEL_DIR": str(settings.MODEL_DIR),
            "MODEL_SOURCE": str(settings.MODEL_SOURCE),
            "DATABASE_TIMEOUT_S": "30",
        }


@pytest.mark.slow  # 7 manage.py processes, 3 loading the engine: 43-49 s a vendor (load 3)
@pytest.mark.parametrize("release_env", ["sqlite", "postgresql"], indirect=True)
def test_the_previous_release_runs_on_a_database_this_release_migrated(
    release_env: dict[str, str], previous_release: Path, tmp_path: Path
) -> None:
    """Today's code migrates and serves first (its rows for the old code to read); then the
    previous release, as in a rolling upgrade or after a rollback: its migrate finds nothing
    to do, and its create_tenant, /liveness, a capture session, calibrate, evaluate and admin
    pages succeed; then today's code again (a roll forward) reads what the old one wrote."""
    env = release_env
    (tmp_path / "sample").mkdir()
    folder = subset_of_dev(tmp_path / "sample", lambda row: "minivision" in row["file"])
    manage_in(REPO, env, "migrate", "--noinput", "-v0")
    today = create_tenant(REPO, env, "today")
    assert run_paths(REPO, env, "today", today) == SERVED
    assert "No migrations to apply." in manage_in(previous_release, env, "migrate", "--noinput")
    before = create_tenant(previous_release, env, "before")
    assert run_paths(previous_release, env, "before", before, FOLDER=str(folder)) == {
        **SERVED,
        "calibrate": "ok",
        "evaluate": "ok",
    }
    assert run_paths(REPO, env, "before", before) == SERVED
