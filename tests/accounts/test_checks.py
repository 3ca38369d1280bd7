"""System checks: a tenant whose profile the engine does not have fails `check --database`
(and so `migrate`, which bin/entrypoint runs before gunicorn); a tenant whose rate limit is 0
(saved before the model refused it) is named in a warning."""

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.checks import tenant_profiles_exist, tenant_rate_limits_allow_calls
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
