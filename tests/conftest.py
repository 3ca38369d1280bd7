"""Shared fixtures: the real engine (loaded once), tenants, helpers to post selfies and run
management commands, the documentation site (built once)."""

import base64
import csv
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any, NoReturn

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test.client import Client as DjangoClient

from accounts.models import HashId, Tenant
from calibration.models import Calibration
from guard import throttle
from liveness import runtime
from ml.install import install_models
from ml.profiles import fingerprint

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = Path(os.environ.get("FACIA_DEV_DATA", REPO.parent / "shared" / "data" / "dev"))
LIVE_JPG = DEV_DATA / "live" / "minivision_1.jpg"
SPOOF_JPG = DEV_DATA / "spoof" / "minivision_3.jpg"
PG_ADMIN_URL = os.environ.get("FACIA_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def ci_requires_everything(env: Mapping[str, str] = os.environ) -> bool:
    """True under CI (``CI`` set to anything but empty, 0, false or no): a test whose tool is
    missing must then fail, so a green run never hides lost coverage."""
    return env.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def skip_or_fail(reason: str, env: Mapping[str, str] = os.environ) -> NoReturn:
    """Skip with ``reason``; fail with it instead when :func:`ci_requires_everything`."""
    if ci_requires_everything(env):
        pytest.fail(f"{reason} (CI is set: failing instead of skipping)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards; skips the test (with the
    reason; fails under CI) only when no server answers."""
    import psycopg

    try:
        admin = psycopg.connect(
            PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        skip_or_fail(f"no PostgreSQL server answers at {PG_ADMIN_URL}: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database_url(vendor: str, tmp_path: Path, prefix: str) -> Iterator[str]:
    """A fresh database of ``vendor`` for a subprocess: a SQLite file in ``tmp_path``, or a
    scratch PostgreSQL database (``scratch_database``)."""
    if vendor == "sqlite":
        yield f"sqlite:///{tmp_path / (prefix + '.sqlite3')}"
        return
    with scratch_database(prefix) as url:
        yield url


def run_on_database(module: str, url: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``python -m module args`` against the database at ``url`` (its own process, as a
    second server would be) and return the JSON object its last line prints.

    Its waits on the database are bounded at 30 s, not the service's 3 s: these scripts test
    the order of concurrent writes, and a machine loaded to 6 on 2 cores once made one of
    their waits pass 3 s (503, not the race's outcome). The bound has tests of its own
    (tests/system/test_db_freeze.py)."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": url, "DATABASE_TIMEOUT_S": "30"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


FULL_FRAMES = ("minivision", "jomariya")  # dev's full camera frames; the others are crops


def subset_of_dev(folder: Path, keep: Callable[[dict[str, str]], bool]) -> Path:
    """A labelled folder of the dev rows ``keep`` accepts: symbolic links (the images are read
    in place) and their manifest rows."""
    with (DEV_DATA / "manifest.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if keep(row)]
    for label in ("live", "spoof"):
        (folder / label).mkdir()
    for row in rows:
        (folder / row["file"]).symlink_to(DEV_DATA / row["file"])
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(reader.fieldnames or ()))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def is_frame(row: dict[str, str]) -> bool:
    return Path(row["file"]).name.startswith(FULL_FRAMES)


def stored_calibration(tenant: Tenant, **fields: Any) -> Calibration:
    """A calibration record as ``manage.py calibrate`` stores one (not activated); ``fields``
    override the defaults."""
    values: dict[str, Any] = {
        "created_by": "op",
        "origin": "command",
        "profile": tenant.profile,
        "fingerprint": fingerprint(tenant.profile),
        "params": {"a": 1.0, "b": 0.0},
        "threshold": 0.6,
        "previous_threshold": 0.5,
        "bona_fide": 5,
        "attacks": 5,
        "figures": {},
        **fields,
    }
    return Calibration.objects.create(tenant=tenant, **values)


def rate_spent(tenant: Tenant) -> None:
    """``tenant``'s rate limit set to 1 call a minute (the least the model takes: 0 is refused)
    and that call already made, counted by the throttle in this minute's window and in the
    next, so that its next call gets 429 even when a minute turns first (guard.throttle
    counts fixed windows of 60 s)."""
    Tenant.objects.filter(pk=tenant.pk).update(rate_limit_per_minute=1)
    now = throttle.Window.current(60)
    for window in (now, throttle.Window(now.start + now.seconds, now.seconds)):
        throttle.hit(throttle.RATE_SCOPE, str(tenant.pk), window)


def tenant_form(tenant: Tenant, **fields: str) -> dict[str, str]:
    """The admin's tenant change form as it posts it for ``tenant`` (no hash_id rows), with
    ``fields`` changed."""
    from tests.accounts.test_admin import INLINE_MANAGEMENT

    data = {
        "name": tenant.name,
        "is_active": "on",
        "request_limit": "",
        "threshold": str(tenant.threshold),
        "profile": tenant.profile,
        "crop_policy": tenant.crop_policy,
        "challenge": tenant.challenge,
        "challenge_band": str(tenant.challenge_band),
    }
    return {**data, **fields, **INLINE_MANAGEMENT}


def run_command(*args: str) -> list[str]:
    """A management command run in this process; its output lines."""
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_uri(path: Path) -> str:
    mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return f"data:{mime};base64,{b64(path.read_bytes())}"


@pytest.fixture(scope="session")
def warm_engine() -> None:
    """Install the models if needed and load + warm this process's engine once."""
    install_models(settings.MODEL_SOURCE, settings.MODEL_DIR)
    runtime.get_engine()


@pytest.fixture
def make_tenant(db: None) -> Callable[..., tuple[Tenant, str]]:
    def make(name: str = "acme", **fields: Any) -> tuple[Tenant, str]:
        tenant = Tenant.objects.create(name=name, **fields)
        return tenant, HashId.issue(tenant).secret

    return make


@pytest.fixture
def tenant(make_tenant: Callable[..., tuple[Tenant, str]]) -> tuple[Tenant, str]:
    return make_tenant()


Post = Callable[..., Any]


@pytest.fixture
def post_liveness(client: DjangoClient) -> Post:
    """POST a JSON body (a dict, or raw text/bytes) to /liveness."""

    def post(body: dict[str, Any] | str | bytes, **extra: Any) -> Any:
        raw = json.dumps(body) if isinstance(body, dict) else body
        return client.post("/liveness", data=raw, content_type="application/json", **extra)

    return post


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site as `make docs` builds it, strictly, into a temp dir (built once:
    tests/docs/test_docs.py and tests/system/test_docs.py read it)."""
    site = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "WARNING" not in done.stderr + done.stdout, done.stderr + done.stdout
    return site
