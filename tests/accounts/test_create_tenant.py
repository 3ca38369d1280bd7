"""manage.py create_tenant."""

import pytest
from django.core.management import CommandError

from accounts.models import HashId, Tenant
from tests.conftest import run_command as run


def test_create_tenant_prints_hash_id_last(db: None) -> None:
    lines = run("create_tenant", "Acme", "--limit", "100", "--threshold", "0.6")
    tenant = Tenant.objects.get(name="Acme")
    assert (tenant.request_limit, tenant.threshold) == (100, 0.6)
    assert HashId.tenant_for(lines[-1]) == tenant
    assert len(lines[-1]) == 43


def test_create_tenant_defaults_to_unlimited(db: None) -> None:
    run("create_tenant", "Free")
    tenant = Tenant.objects.get(name="Free")
    assert (tenant.request_limit, tenant.threshold) == (None, 0.5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "1.5"], "threshold"),
        (["--threshold", "-0.1"], "threshold"),
        (["--threshold", "nan"], "--threshold"),  # not an IntegrityError's traceback (SQLite)
        (["--threshold", "inf"], "threshold"),
        (["--limit", "-1"], "--limit"),
        # 0 per minute would refuse every call: leave it out for none, deactivate to stop
        (["--rate-limit", "0"], "--rate-limit must be 1 or more: leave it out for no limit"),
        (["--rate-limit", "-1"], "--rate-limit must be 1 or more"),
    ],
)
def test_create_tenant_rejects_bad_input(db: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("create_tenant", "Bad", *args)
    assert not Tenant.objects.exists()


def test_create_tenant_twice_fails(db: None) -> None:
    run("create_tenant", "Acme")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "Acme")
