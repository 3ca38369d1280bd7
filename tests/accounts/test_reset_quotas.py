"""manage.py reset_quotas."""

import pytest
from django.core.management import CommandError

from accounts.models import Tenant
from tests.conftest import run_command as run


def test_reset_quotas(db: None) -> None:
    Tenant.objects.create(name="a", requests_used=5)
    Tenant.objects.create(name="b", requests_used=6)
    Tenant.objects.create(name="c", requests_used=7)
    assert (
        run("reset_quotas", "--tenant", "a", "--tenant", "b")[-1] == "Quota reset for 2 tenant(s)."
    )
    assert dict(Tenant.objects.values_list("name", "requests_used")) == {"a": 0, "b": 0, "c": 7}
    run("reset_quotas")
    assert set(Tenant.objects.values_list("requests_used", flat=True)) == {0}
    with pytest.raises(CommandError, match="No tenant named: zed"):
        run("reset_quotas", "--tenant", "zed")
