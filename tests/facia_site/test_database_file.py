"""The SQLite database and the files SQLite writes beside it are the service user's alone
(0600), whatever the umask and the var directory's mode: they hold the admins' password
hashes (facia_site.sqlite3)."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# One real request that writes (an unknown hash_id: its 401 is counted), then the modes of the
# database and its -wal and -shm while a connection holds them open.
REQUEST = """
import json, os, django
django.setup()
from django.conf import settings
from django.test import Client
from django.db import connection
body = {"hash_id": "x" * 43, "selfie_image": "x"}
answer = Client(HTTP_HOST="localhost").post("/liveness", body, content_type="application/json")
with connection.cursor() as cursor:  # open (the request's may be closed): -wal, -shm exist
    cursor.execute("SELECT count(*) FROM guard_refusal")
name = settings.DATABASES["default"]["NAME"]
print(json.dumps({"status": answer.status_code, **{
    end: oct(os.stat(f"{name}{end}").st_mode & 0o777) for end in ("", "-wal", "-shm")
}}))
"""


def run(var: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(FACIA_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="facia_site.settings")
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: SQLite made its files 0644
    )


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_the_database_and_its_companions_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)  # an operator's (or a volume's) directory, readable by all
    done = run(var, "manage.py", "migrate", "-v", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert mode(var / "db.sqlite3") == "0o600"
    assert mode(var / "db.sqlite3.migrate-lock") == "0o600"  # empty, but var/ is private
    done = run(var, "-c", REQUEST)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"status": 401, "": "0o600", "-wal": "0o600", "-shm": "0o600"}


def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    assert run(var, "manage.py", "migrate", "-v", "0").returncode == 0
    (var / "db.sqlite3").chmod(0o644)  # as SQLite created it
    done = run(var, "-c", REQUEST)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"status": 401, "": "0o600", "-wal": "0o600", "-shm": "0o600"}
