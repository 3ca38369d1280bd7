"""manage.py issue_hash_id."""

import pytest
from django.core.management import CommandError

from accounts.models import HashId, Tenant, digest_of
from tests.accounts.test_admin import stored_text
from tests.conftest import run_command as run


def test_issue_hash_id(db: None) -> None:
    first = run("create_tenant", "Acme")[-1]
    second = run("issue_hash_id", "Acme")[-1]
    tenant = Tenant.objects.get(name="Acme")
    assert first != second
    assert HashId.tenant_for(first) == HashId.tenant_for(second) == tenant
    with pytest.raises(CommandError, match="No tenant named"):
        run("issue_hash_id", "Nobody")


def test_tenant_for_loads_every_field_as_the_orm_does(db: None) -> None:
    """HashId.tenant_for reads its row with a cursor: each value comes back as
    Tenant.objects.get gives it (JSON, datetimes, booleans, nulls), and the tenant is saved."""
    maps = {"frame": {"a": 1.5, "b": -0.2}, "crop": {"a": 1.0, "b": 0.0}}
    tenant = Tenant.objects.create(
        name="Calibrated",
        request_limit=10,
        calibration={"id": 3, "profile": "fast", "maps": maps},
        shadow_calibration={"id": 4, "profile": "fast", "maps": maps, "threshold": 0.6},
    )
    found = HashId.tenant_for(HashId.issue(tenant).secret)
    stored = Tenant.objects.get(pk=tenant.pk)
    assert found is not None
    for field in Tenant._meta.concrete_fields:
        value, expected = getattr(found, field.attname), getattr(stored, field.attname)
        assert (value, type(value)) == (expected, type(expected)), field.name
    assert (found._state.db, found._state.adding) == (stored._state.db, False)


def test_a_hash_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leading "-" reads as an option on every command line (1 draw in 64 did)."""
    import secrets

    from accounts import models

    draws = iter(["-" + "a" * 42, "-" + "b" * 42, "c" * 43])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(draws))
    assert models.new_secret() == "c" * 43
    monkeypatch.undo()
    found = {models.new_secret()[0] for _ in range(2000)}  # 2000 draws miss "-" by chance 1e-14
    assert "-" not in found and len(found) > 50


@pytest.mark.parametrize("command", ["create_tenant", "issue_hash_id"])
def test_the_secret_is_printed_once_and_only_its_digest_stored(db: None, command: str) -> None:
    if command == "issue_hash_id":
        run("create_tenant", "Acme")
    printed = run(command, "Acme")
    secret = printed[-1]
    assert HashId.tenant_for(secret) == Tenant.objects.get(name="Acme")
    assert "\n".join(printed).count(secret) == 1
    stored = stored_text()
    assert digest_of(secret) in stored and secret not in stored


def test_names_are_printed_with_their_controls_escaped(db: None) -> None:
    """issue_hash_id printed the name typed, or a name stored before names were checked, with
    its control characters raw: an escape sequence on the operator's terminal."""
    with pytest.raises(CommandError) as refused:
        run("issue_hash_id", "Nobody\x1b[2J\n")
    assert str(refused.value) == r'No tenant named "Nobody\x1b[2J\n".'
    Tenant.objects.bulk_create([Tenant(name="Old\x1b[31m")])  # stored before names were checked
    lines = run("issue_hash_id", "Old\x1b[31m")
    assert lines[0] == r"New hash_id for Old\x1b[31m, shown only now:"
