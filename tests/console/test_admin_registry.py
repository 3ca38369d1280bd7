"""The admin the site serves for tenants, refusals and throttle windows: the console's, which
carries every layer's features (accounts' task buttons, calibration's pages and action, the
console's usage pages and target APCER), whatever the order of INSTALLED_APPS; registered in
one place, and never taken back by another app."""

import ast
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import resolve, reverse

from accounts.models import Tenant
from guard.models import Counter, Refusal
from tests.conftest import REPO

REGISTERED = {
    "accounts.Tenant": "console.admin.ConsoleTenantAdmin",
    "guard.Refusal": "console.admin.NamedRefusalAdmin",
    "guard.Counter": "console.admin.NamedCounterAdmin",
}
# The tenant admin's own pages, by the app that adds each: (URL name, arguments).
TENANT_PAGES = {
    "accounts": [
        ("accounts_tenant_issue", [1]),
        ("accounts_tenant_reset_quota", [1]),
        ("accounts_tenant_revoke", [1, 2]),
    ],
    "calibration": [("accounts_tenant_calibrate", [1]), ("accounts_tenant_shadow", [1])],
    "console": [("accounts_tenant_usage", [1]), ("accounts_tenant_usage_csv", [1])],
}
# Fields and actions each layer adds to the tenant admin.
TENANT_FIELDS = {
    "accounts": "challenge_band",
    "calibration": "shadow_status",
    "console": "target_apcer",
}
TENANT_ACTIONS = {"accounts": "issue_hash_id", "calibration": "revert_to_uncalibrated"}
LAYERED_APPS = ["telemetry", "guard", "accounts", "liveness", "calibration", "capture", "console"]
# What a child process prints: each model's admin class, the admin answering each tenant page.
PROBE = """
import inspect, json
import django
django.setup()
from django.contrib import admin
from django.urls import resolve, reverse
from accounts.models import Tenant
pages = json.loads(PAGES)
def owner(name, args):
    view = inspect.unwrap(resolve(reverse("admin:" + name, args=args)).func)
    return type(view.__self__).__qualname__
print(json.dumps({
    "registered": {
        m._meta.label: f"{type(a).__module__}.{type(a).__qualname__}"
        for m, a in admin.site._registry.items()
    },
    "pages": {name: owner(name, args) for name, args in pages},
}))
"""


def qualified(model_admin: object) -> str:
    return f"{type(model_admin).__module__}.{type(model_admin).__qualname__}"


def every_page() -> list[tuple[str, list[int]]]:
    return [page for pages in TENANT_PAGES.values() for page in pages]


def test_the_console_admins_are_registered() -> None:
    registry = admin.site._registry
    assert {
        label: qualified(registry[model])
        for label, model in (
            ("accounts.Tenant", Tenant),
            ("guard.Refusal", Refusal),
            ("guard.Counter", Counter),
        )
    } == REGISTERED


@pytest.mark.parametrize("app", sorted(TENANT_PAGES))
def test_the_registered_tenant_admin_answers_each_layers_pages(app: str) -> None:
    tenants = admin.site._registry[Tenant]
    for name, args in TENANT_PAGES[app]:
        view = inspect.unwrap(resolve(reverse(f"admin:{name}", args=args)).func)
        assert getattr(view, "__self__", None) is tenants, name


@pytest.mark.parametrize("app", sorted(TENANT_FIELDS))
def test_the_registered_tenant_admin_has_each_layers_fields_and_actions(app: str) -> None:
    tenants = admin.site._registry[Tenant]
    assert TENANT_FIELDS[app] in (tenants.fields or ())
    if app in TENANT_ACTIONS:
        assert TENANT_ACTIONS[app] in (tenants.actions or ())


def reordered(tmp_path: Path, apps: list[str]) -> dict[str, dict[str, str]]:
    """What a process whose settings list the apps in ``apps``' order registers and routes."""
    first = settings.INSTALLED_APPS.index(LAYERED_APPS[0])
    ordered = [*settings.INSTALLED_APPS[:first], *apps, "facia_site"]
    assert sorted(ordered) == sorted(settings.INSTALLED_APPS)
    (tmp_path / "reordered_settings.py").write_text(
        f"from facia_site.settings import *  # noqa\nINSTALLED_APPS = {ordered!r}\n"
    )
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "reordered_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    code = f"PAGES = {json.dumps(json.dumps(every_page()))}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, dict[str, str]] = json.loads(done.stdout.splitlines()[-1])
    return found


@pytest.mark.parametrize(
    "apps",
    [
        # calibration after the console that extends it
        [a for a in LAYERED_APPS if a != "calibration"] + ["calibration"],
        # top first
        list(reversed(LAYERED_APPS)),
    ],
    ids=["calibration-last", "reversed"],
)
def test_the_order_of_installed_apps_changes_nothing(tmp_path: Path, apps: list[str]) -> None:
    found = reordered(tmp_path, apps)
    assert {label: found["registered"][label] for label in REGISTERED} == REGISTERED
    assert set(found["pages"].values()) == {"ConsoleTenantAdmin"}


def registrations(path: Path, models: set[str]) -> list[tuple[str, str]]:
    """(``register`` or ``unregister``, model) for each such call in ``path`` that names one of
    ``models``, ``@admin.register(...)`` decorators included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr not in ("register", "unregister") or not node.args:
            continue
        named = {n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name)} & models
        found += [(node.func.attr, model) for model in named]
    return sorted(found)


MODELS = {label.split(".")[1] for label in REGISTERED}


def test_each_is_registered_once_and_never_unregistered() -> None:
    found = {
        str(path.relative_to(REPO)): calls
        for path in sorted(REPO.glob("*/admin.py"))
        if (calls := registrations(path, MODELS))
    }
    assert found == {"console/admin.py": [("register", m) for m in sorted(MODELS)]}


def test_the_scan_sees_a_decorator_and_an_unregister(tmp_path: Path) -> None:
    probe = tmp_path / "admin.py"
    probe.write_text(
        "@admin.register(Tenant)\nclass A: ...\n"
        "admin.site.unregister(Counter)\nadmin.site.register(Refusal, B)\nsite.register(User)\n"
    )
    assert registrations(probe, MODELS) == [
        ("register", "Refusal"),
        ("register", "Tenant"),
        ("unregister", "Counter"),
    ]
