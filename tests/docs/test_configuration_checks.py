"""docs/operator/configuration.md: "Every value is checked when the service starts ...: one that
cannot be read or is out of range stops the start, exit status 1, with one log line naming the
variable". bin/entrypoint's own two, run as the page's rows give them. What each case guards
against, unchecked: MIGRATE_VERBOSITY=9 would reach migrate's argparse (its usage as 8 ERROR
records, exit 2), MIGRATE_ON_START=maybe and MIGRATE_ON_START=false (a boolean as the other rows'
are) would migrate where only "0" skips; HEALTHCHECK_TIMEOUT=abc would let the service start,
then make every bin/healthcheck a traceback; ALLOWED_HOSTS set blank, start, then answer every
request 400; HOST set blank would bind every interface (gunicorn's ":5001"), where the row's
default is loopback; a switch set blank would be off, SECURE_SSL_REDIRECT's and the HSTS ones'
too, whose rows say on; CSRF_TRUSTED_ORIGINS without a scheme would stop migrate alone, as
Django's 3-record system check error, and with a trailing slash be taken, then never match an
Origin."""

import json
import os
import re
import runpy
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.servers.entrypoint import entrypoint_env, run_entrypoint

PAGE = REPO / "docs" / "operator" / "configuration.md"


def row(name: str) -> str:
    found = re.search(rf"^\| `{name}` \| (.*)$", PAGE.read_text(encoding="utf-8"), re.M)
    assert found, name
    return found[1]


def records(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


@pytest.mark.parametrize(
    ("setting", "accepted"),
    [
        ("MIGRATE_VERBOSITY=9", "expected a whole number from 0 to 3"),
        ("MIGRATE_VERBOSITY=loud", "expected a whole number"),
        ("MIGRATE_ON_START=maybe", "expected one of 1/0, true/false, yes/no, on/off"),
        ("HEALTHCHECK_TIMEOUT=abc", "expected a number of seconds above 0"),
        ("HEALTHCHECK_TIMEOUT=0", "expected a number of seconds above 0"),
        ("ALLOWED_HOSTS=", "expected one host name or more, comma separated"),
        ("ALLOWED_HOSTS= , ", "expected one host name or more, comma separated"),
        ("CSRF_TRUSTED_ORIGINS=liveness.example.com", "is no origin"),
        ("CSRF_TRUSTED_ORIGINS=https://liveness.example.com/", "is no origin"),
    ],
)
def test_a_bad_setting_stops_the_start_as_one_record(
    tmp_path: Path, setting: str, accepted: str
) -> None:
    name, _, value = setting.partition("=")
    env = entrypoint_env(tmp_path, 0, PORT="http")  # nothing may start even if it went on
    env[name] = value
    done = run_entrypoint(env, "serve")
    assert done.returncode == 1
    (record,) = records(done.stdout + done.stderr)
    assert record["levelname"] == "ERROR" and "exc_info" not in record
    message = str(record["message"])
    assert f"ImproperlyConfigured: {name}={value!r}: {accepted}" in message or (
        f"ImproperlyConfigured: {name}: {value!r} {accepted}" in message
    )


@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_each_off_value_the_row_names_skips_the_migrations(tmp_path: Path, value: str) -> None:
    assert "`0` (or `false`, `no`, `off`)" in row("MIGRATE_ON_START")
    env = entrypoint_env(tmp_path, 0, PORT="http", MIGRATE_ON_START=value)
    done = run_entrypoint(env, "serve")  # gunicorn refuses PORT=http: nothing starts
    messages = [str(r["message"]) for r in records(done.stdout + done.stderr)]
    assert done.returncode == 1 and "PORT='http'" in messages[-1], messages
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master")}
    assert "accounts_tenant" not in tables, f"MIGRATE_ON_START={value!r} migrated"


def test_the_rows_give_the_range_and_the_blank_default() -> None:
    assert "`0` (also when set blank)" in row("MIGRATE_VERBOSITY")
    assert "0 to 3" in row("MIGRATE_VERBOSITY")
    assert "`1` (also when set blank)" in row("MIGRATE_ON_START")


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_the_healthcheck_says_a_bad_timeout_in_one_line(value: str) -> None:
    env = {**os.environ, "HEALTHCHECK_TIMEOUT": value, "PORT": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / "bin" / "healthcheck")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    expected = f"unhealthy: HEALTHCHECK_TIMEOUT={value!r}: expected a number of seconds above 0\n"
    assert (done.stdout, done.stderr) == ("", expected)


@pytest.mark.parametrize("value", ["", " "])
def test_a_blank_host_binds_the_rows_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    assert row("HOST").startswith("`127.0.0.1` (also when set blank)")
    monkeypatch.setenv("HOST", value)
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config = runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    assert config["bind"] == "127.0.0.1:8123"


SWITCHES_ON = ["SECURE_SSL_REDIRECT", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD"]


@pytest.mark.parametrize("value", ["", " "])
def test_a_blank_switch_is_its_rows_default(value: str) -> None:
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    assert "A switch (on / off) reads" in text and "blank is its default" in text
    assert all(row(name).startswith("on |") for name in SWITCHES_ON)
    env = {**os.environ, "DJANGO_SECURE": "1", "DEBUG": value}
    env |= {name: value for name in SWITCHES_ON}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        f"print([settings.DEBUG] + [getattr(settings, n) for n in {SWITCHES_ON!r}])"
    )
    env["DJANGO_SETTINGS_MODULE"] = "facia_site.settings"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.stdout.split("\n")[-2] == "[False, True, True, True]", done.stdout + done.stderr
