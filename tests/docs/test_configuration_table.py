"""docs/operator/configuration.md's table is the environment the service reads: every variable
the code reads (settings, gunicorn's config, bin/entrypoint, the test helpers) has its row, or
is named on the page as an older name; every row is read by something; and setting a variable
to the default its row gives changes nothing in Django's settings or gunicorn's config."""

from __future__ import annotations

import ast
import os
import re
import runpy
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from facia_site.vardir import prepare
from tests.conftest import REPO

PAGE = REPO / "docs" / "operator" / "configuration.md"
ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \| ", re.M)
PACKAGES = ["accounts", "calibration", "capture", "console", "facia_site", "guard", "liveness"]
PACKAGES += ["ml", "telemetry"]
SOURCES = [p for name in PACKAGES for p in (REPO / name).rglob("*.py")]
SOURCES += [REPO / "manage.py", REPO / "bin" / "healthcheck"]
SOURCES += [REPO / "tests" / "conftest.py", REPO / "tests" / "browser.py"]
SOURCES += [REPO / "tests" / "capture" / "clips.py"]
SYSTEM_TESTS = ["test_challenge_http.py", "test_soak_sessions.py", "test_console_browser.py"]
SOURCES += [REPO / "tests" / "system" / name for name in SYSTEM_TESTS]
ENTRYPOINT = REPO / "bin" / "entrypoint"
# Set and read between our own processes, or given by the WSGI server: nobody sets them.
INTERNAL = {"CONTENT_LENGTH", "DJANGO_SETTINGS_MODULE"}
INTERNAL |= {"GUNICORN_DIRTY_SOCKET", "FACIA_COMMAND_LOGS"}
# Read by gunicorn itself, not by our code: none (FORWARDED_ALLOW_IPS, gunicorn's, is checked
# by the settings and facia_site.serve too).
GUNICORN_OWN: set[str] = set()
# Defaults that are paths, generated, or fresh per server: not the same value when set.
NOT_SETTABLE = {"DATABASE_URL", "FACIA_VAR_DIR", "MODEL_DIR", "MODEL_SOURCE", "SECRET_KEY"}
NOT_SETTABLE |= {"PROMETHEUS_MULTIPROC_DIR"}
GUNICORN_NAMES = ["bind", "workers", "worker_connections", "timeout", "dirty_workers"]
GUNICORN_NAMES += ["max_requests", "max_requests_jitter", "loglevel", "logconfig_dict"]


def rows() -> dict[str, str]:
    return dict(ROW.findall(PAGE.read_text(encoding="utf-8")))


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _name_read(node: ast.AST) -> str | None:
    """The variable an ``env_*("NAME", ...)``, ``os.environ.get("NAME")``, ``os.getenv``
    or ``os.environ["NAME"]`` reads."""
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        key = node.slice
    elif isinstance(node, ast.Call) and node.args:
        func, key = node.func, node.args[0]
        by_helper = isinstance(func, ast.Name) and func.id.startswith("env_")
        by_os = isinstance(func, ast.Attribute) and (
            func.attr == "getenv"
            or (func.attr in ("get", "setdefault") and _is_environ(func.value))
        )
        if not (by_helper or by_os):
            return None
    else:
        return None
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        return key.value if re.fullmatch(r"[A-Z][A-Z0-9_]*", key.value) else None
    return None


def read_by_code() -> set[str]:
    names = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if name := _name_read(node):
                names.add(name)
    script = ENTRYPOINT.read_text(encoding="utf-8")
    assigned = set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", script, re.M))
    names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", script)) - assigned
    return names


def test_every_variable_read_has_its_row() -> None:
    text = PAGE.read_text(encoding="utf-8")
    unnamed = read_by_code() - INTERNAL - set(rows())
    # An older name (WORKERS, TRUSTED_PROXY_COUNT) is named in its successor's row.
    assert sorted(name for name in unnamed if f"`{name}`" not in text) == []


def test_every_row_is_read() -> None:
    assert len(rows()) >= 40
    assert sorted(set(rows()) - read_by_code() - GUNICORN_OWN) == []


@pytest.fixture
def environment(tmp_path: Path) -> Iterator[MutableMapping[str, str]]:
    """os.environ without any documented variable, a private var dir and metrics dir; put
    back as it was afterwards (gunicorn's config writes to it)."""
    saved = dict(os.environ)
    for name in rows():
        os.environ.pop(name, None)
    os.environ["FACIA_VAR_DIR"] = str(prepare(tmp_path / "var"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    try:
        yield os.environ
    finally:
        os.environ.clear()
        os.environ.update(saved)


def configuration() -> dict[str, Any]:
    """Django's settings and gunicorn's config, as each process would read them now."""
    settings = runpy.run_path(str(REPO / "facia_site" / "settings.py"))
    gunicorn = runpy.run_path(str(REPO / "facia_site" / "gunicorn.conf.py"))
    snapshot = {name: value for name, value in settings.items() if name.isupper()}
    return snapshot | {f"gunicorn.{name}": gunicorn[name] for name in GUNICORN_NAMES}


def documented_default(cell: str) -> str | None:
    """The value a row's default cell gives: its leading literal, "" for off and empty, "1"
    for on."""
    if literal := re.match(r"`([^`]*)`", cell):
        return literal[1]
    word = cell.split(" ")[0]
    return "" if word in ("off", "empty") else "1" if word == "on" else None


def test_each_documented_default_is_the_default(environment: MutableMapping[str, str]) -> None:
    baseline = configuration()
    checked, differs = [], []
    for name, cell in rows().items():
        value = documented_default(cell)
        if name in NOT_SETTABLE or value is None:
            continue
        environment[name] = value
        changed = {k for k, v in configuration().items() if baseline.get(k) != v}
        del environment[name]
        checked.append(name)
        if changed:
            differs.append(f"{name}={value!r} changes {sorted(changed)}")
    assert len(checked) >= 35, checked
    assert differs == []
