"""System checks: a tenant whose profile the engine does not have fails `check --database`
(and so `migrate`, which bin/entrypoint runs before gunicorn)."""

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.checks import tenant_profiles_exist
from accounts.models import Tenant
from ml.profiles import PROFILES, profile_choices


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
