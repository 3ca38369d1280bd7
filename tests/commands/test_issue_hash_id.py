"""manage.py issue_hash_id."""

import pytest
from django.core.management import CommandError

from accounts.models import HashId, Tenant
from tests.commands import run


def test_issue_hash_id(db: None) -> None:
    first = run("create_tenant", "Acme")[-1]
    second = run("issue_hash_id", "Acme")[-1]
    tenant = Tenant.objects.get(name="Acme")
    assert first != second
    assert HashId.tenant_for(first) == HashId.tenant_for(second) == tenant
    with pytest.raises(CommandError, match="No tenant named"):
        run("issue_hash_id", "Nobody")
