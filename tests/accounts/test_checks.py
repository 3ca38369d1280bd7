"""System checks: a tenant whose profile the engine does not have fails `check --database`
(and so `migrate`, which bin/entrypoint runs before gunicorn); a tenant whose rate limit is 0
(saved before the model refused it) is named in a warning."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.checks import tenant_profiles_exist, tenant_rate_limits_allow_calls
from accounts.models import Tenant
from ml.profiles import PROFILES, profile_choices
from tests.conftest import REPO


def test_profile_choices_are_the_engine_profiles() -> None:
    field = Tenant._meta.get_field("profile")
    assert [name for name, _ in field.choices] == list(PROFILES)  # type: ignore[union-attr]  # a field with choices
    assert profile_choices()[0] == ("fast", "fast: MiniFASNet pair + HyperFAS")


def test_known_profiles_pass(make_tenant: Any) -> None:
    make_tenant(profile="thorough")
    assert tenant_profiles_exist(databases=["default"]) == []
    call_command("check", "--database", "default")


def test_a_tenant_with_a_profile_the_engine_lacks_fails(make_tenant: Any) -> None:
    tenant, _ = make_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(profile="retired")
    errors = tenant_profiles_exist(databases=["default"])
    assert [e.id for e in errors] == ["accounts.E001"] and "'retired'" in errors[0].msg
    with pytest.raises(SystemCheckError, match="accounts.E001"):
        call_command("check", "--database", "default")


def test_without_a_database_nothing_is_queried(db: None) -> None:
    assert tenant_profiles_exist(databases=None) == []


def test_a_tenant_whose_rate_limit_refuses_every_call_is_named(make_tenant: Any) -> None:
    blocked, _ = make_tenant("Blocked")
    make_tenant("Paced", rate_limit_per_minute=1)
    assert tenant_rate_limits_allow_calls(databases=["default"]) == []
    Tenant.objects.filter(pk=blocked.pk).update(rate_limit_per_minute=0)
    warnings = tenant_rate_limits_allow_calls(databases=["default"])
    assert [w.id for w in warnings] == ["accounts.W001"]
    assert "'Blocked'" in warnings[0].msg and "'Paced'" not in warnings[0].msg
    assert warnings[0].hint is not None and "deactivate" in warnings[0].hint
    # A warning: the start goes on, the row keeps its meaning.
    call_command("check", "--database", "default")
    assert Tenant.objects.get(pk=blocked.pk).rate_limit_per_minute == 0


def test_a_rate_limit_of_0_is_refused_by_the_model(db: None) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Tenant(name="Blocked", rate_limit_per_minute=0).full_clean()
    Tenant(name="Paced", rate_limit_per_minute=1).full_clean()


# migrate on an empty database, each query that fails printed (its first line).
FAILING_QUERIES = """
import django
from django.core.management import execute_from_command_line
from django.db.backends.signals import connection_created

django.setup()


def failing(execute, sql, params, many, context):
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        print("FAILED", sql.splitlines()[0], exc)
        raise


def watch(sender, connection, **kwargs):
    connection.execute_wrappers.append(failing)


# Every connection migrate opens (a wrapper on the one open now did not see the checks').
connection_created.connect(watch)
execute_from_command_line(["manage.py", "migrate", "-v0"])  # call_command skips the checks
"""


def test_migrate_on_an_empty_database_queries_no_table_before_it_exists(tmp_path: Path) -> None:
    """migrate runs the database checks before its first migration: they queried
    accounts_tenant, which failed (caught), each failure an ERROR and its statement in
    PostgreSQL's server log on every first start."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "facia_site.settings",
    }
    done = subprocess.run(
        [sys.executable, "-c", FAILING_QUERIES],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "FAILED" not in done.stdout, done.stdout
