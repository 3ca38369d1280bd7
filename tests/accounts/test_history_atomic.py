"""Each change to a tenant's access (a hash_id issued, revoked or deleted, a quota reset) and its
history entry are one transaction: both are kept or neither. Written apart, a process killed
between the two (here, the entry's insert refused by the database) left the change with no
entry, and the page answered 500. Now nothing is changed, and the page says so; an action goes
on with the other rows it was given (a deletion is all or nothing, guard.deletion). Real SQLite,
in autocommit as the admin runs."""

from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import IntegrityError
from django.test import Client

from accounts.models import HashId, Tenant
from guard.deletion import NOT_DELETED
from tests.accounts.test_admin import add_tenant, run_action, shown_secrets
from tests.history import history_refused

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit: no test transaction

NOTHING = (
    "Nothing was changed: the change or its history entry could not be written (the server "
    "log has the details). Try again."
)


def state() -> tuple[list[Any], list[Any], list[tuple[str, int, str]]]:
    """Every tenant, hash_id and history entry, as stored."""
    return (
        list(Tenant.objects.order_by("pk").values()),
        list(HashId.objects.order_by("pk").values()),
        list(
            LogEntry.objects.order_by("pk").values_list(
                "object_repr", "action_flag", "change_message"
            )
        ),
    )


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def client(admin_client: Client) -> Client:
    admin_client.raise_request_exception = False  # a 500 is answered, as in production
    return admin_client


def test_the_issue_button(client: Client) -> None:
    tenant = Tenant.objects.create(name="Button")
    url = f"/admin/accounts/tenant/{tenant.pk}/issue/"
    before = state()
    with history_refused():
        response = client.post(url, follow=True)
    assert state() == before  # before: a working hash_id with no history entry
    assert response.status_code == 200  # before: 500
    assert shown_secrets(response) == []  # never stored: never shown
    assert f"Tenant “Button”: no hash_id was issued. {NOTHING}" in response.content.decode()
    assert response.redirect_chain[-1][0] == f"/admin/accounts/tenant/{tenant.pk}/change/"

    (secret,) = shown_secrets(client.post(url))  # the history writable: both kept
    assert HashId.tenant_for(secret) == tenant
    assert LogEntry.objects.get().change_message.startswith("Issued hash_id ")


def test_the_issue_action_goes_on_with_the_other_tenants(client: Client) -> None:
    refused = Tenant.objects.create(name="Refused")
    kept = Tenant.objects.create(name="Kept")
    before = state()
    with history_refused("NEW.object_repr = 'Refused'"):
        response = run_action(client, "tenant", "issue_hash_id", refused.pk, kept.pk)
    assert response.status_code == 200  # before: 500
    (secret,) = shown_secrets(response)  # Kept's, only
    assert HashId.tenant_for(secret) == kept
    assert not refused.hash_ids.exists()  # before: issued, with no history entry
    assert state()[2] == [*before[2], ("Kept", 2, f"Issued hash_id {secret[:8]}…")]
    assert f"Tenant “Refused”: no hash_id was issued. {NOTHING}" in response.content.decode()

    with history_refused():  # none issued: the list says so
        response = run_action(client, "tenant", "issue_hash_id", refused.pk)
    assert response.status_code == 200 and shown_secrets(response) == []
    assert messages_of(response) == [f"Tenant “Refused”: no hash_id was issued. {NOTHING}"]
    assert not refused.hash_ids.exists()


def test_a_new_tenant_whose_hash_id_fails_is_added_without_one(client: Client) -> None:
    """Its first hash_id is issued in the add view's transaction (Django's): its failure was
    the whole page's, a 500. Now only the hash_id is not issued, and the page says so."""
    with history_refused("NEW.change_message LIKE 'Issued hash_id %'"):
        response = add_tenant(client, name="Added")
    assert response.status_code == 200  # before: 500, and no tenant
    assert shown_secrets(response) == []
    assert f"Tenant “Added”: no hash_id was issued. {NOTHING}" in response.content.decode()
    tenant = Tenant.objects.get(name="Added")
    assert not tenant.hash_ids.exists()
    assert [(r, f) for r, f, _ in state()[2]] == [("Added", 1)]  # its "Added" entry, only


def test_the_reset_button(client: Client) -> None:
    tenant = Tenant.objects.create(name="Reset", request_limit=5, requests_used=5)
    url = f"/admin/accounts/tenant/{tenant.pk}/reset-quota/"
    before = state()
    with history_refused():
        response = client.post(url, follow=True)
    assert state() == before  # before: reset, with no history entry
    assert response.status_code == 200  # before: 500
    assert messages_of(response) == [f"Tenant “Reset”: quota not reset. {NOTHING}"]

    response = client.post(url, follow=True)
    assert messages_of(response) == ["Quota reset for Reset."]
    assert Tenant.objects.get(pk=tenant.pk).requests_used == 0
    assert LogEntry.objects.get().change_message == "Reset quota (5 used before)."


def test_the_reset_action_goes_on_with_the_other_tenants(client: Client) -> None:
    refused = Tenant.objects.create(name="Refused", request_limit=5, requests_used=4)
    kept = Tenant.objects.create(name="Kept", request_limit=5, requests_used=3)
    with history_refused("NEW.object_repr = 'Refused'"):
        response = run_action(client, "tenant", "reset_quota", refused.pk, kept.pk)
    assert response.status_code == 200  # before: 500
    assert messages_of(response) == [
        f"Tenant “Refused”: quota not reset. {NOTHING}",
        "Quota reset for 1 tenant(s).",
    ]
    used = dict(Tenant.objects.values_list("name", "requests_used"))
    assert used == {"Refused": 4, "Kept": 0}  # before: both reset, one with no history entry
    assert state()[2] == [("Kept", 2, "Reset quota (3 used before).")]


def test_the_revoke_button(client: Client) -> None:
    tenant = Tenant.objects.create(name="Revoke")
    record = HashId.issue(tenant).record
    url = f"/admin/accounts/tenant/{tenant.pk}/revoke/{record.pk}/"
    before = state()
    with history_refused():
        response = client.post(url, follow=True)
    assert state() == before  # before: revoked, with no history entry
    assert response.status_code == 200  # before: 500
    assert messages_of(response) == [
        f"Tenant “Revoke”: hash_id {record.prefix}… was not revoked. {NOTHING}"
    ]

    response = client.post(url, follow=True)
    assert messages_of(response) == [f"Revoked hash_id {record.prefix}…."]
    assert HashId.objects.get().is_revoked
    assert LogEntry.objects.get().change_message == f"Revoked hash_id {record.prefix}…"


def test_the_revoke_action_goes_on_with_the_other_hash_ids(client: Client) -> None:
    tenant = Tenant.objects.create(name="Revoke")
    refused, kept = (HashId.issue(tenant).record for _ in range(2))
    with history_refused(f"NEW.change_message LIKE '%{refused.prefix}%'"):
        response = run_action(client, "hashid", "revoke", refused.pk, kept.pk)
    assert response.status_code == 200  # before: 500
    said = messages_of(response)
    assert said == [
        f"Tenant “Revoke”: hash_id {refused.prefix}… was not revoked. {NOTHING}",
        said[1],
    ]
    assert said[1] == "Revoked 1 hash_id(s)."
    revoked = dict(HashId.objects.values_list("pk", "revoked_at"))
    assert revoked[refused.pk] is None and revoked[kept.pk] is not None
    assert state()[2] == [("Revoke", 2, f"Revoked hash_id {kept.prefix}…")]


def test_the_delete_action_deletes_nothing_when_an_entry_cannot_be_written(
    client: Client,
) -> None:
    """The selection and its history are one transaction (guard.deletion.delete): one entry
    refused rolled it all back with a 500; now the page says nothing was deleted."""
    tenant = Tenant.objects.create(name="Delete")
    refused, kept = (HashId.issue(tenant).record for _ in range(2))
    data = {"action": "delete_selected", "_selected_action": [refused.pk, kept.pk], "post": "yes"}
    before = state()
    with history_refused(f"NEW.change_message LIKE 'Deleted hash_id {refused.prefix}%'"):
        response = client.post("/admin/accounts/hashid/", data, follow=True)
    assert response.status_code == 200  # before: 500
    assert messages_of(response) == [NOT_DELETED]
    assert state() == before
    response = client.post("/admin/accounts/hashid/", data, follow=True)
    assert messages_of(response) == ["Successfully deleted 2 hash_ids."]
    assert not HashId.objects.exists()
    assert sorted(e[2] for e in state()[2] if e[0] == "Delete") == sorted(
        f"Deleted hash_id {h.prefix}…" for h in (refused, kept)
    )


def test_issue_hash_id_command() -> None:
    tenant = Tenant.objects.create(name="Command")
    out = StringIO()
    with history_refused(), pytest.raises(IntegrityError, match="history down"):
        call_command("issue_hash_id", "Command", stdout=out)
    assert out.getvalue() == ""  # no secret printed
    assert not HashId.objects.exists() and not LogEntry.objects.exists()  # before: one hash_id
    call_command("issue_hash_id", "Command", stdout=out)
    assert HashId.tenant_for(out.getvalue().split()[-1]) == tenant
    assert LogEntry.objects.count() == 1


def test_reset_quotas_command() -> None:
    Tenant.objects.create(name="First", requests_used=3)
    Tenant.objects.create(name="Second", requests_used=2)
    before = state()
    with (
        history_refused("NEW.object_repr = 'Second'"),
        pytest.raises(IntegrityError, match="history down"),
    ):
        call_command("reset_quotas", stdout=StringIO())
    assert state() == before  # before: both reset, First's entry written, Second's not
    call_command("reset_quotas", stdout=StringIO())
    assert list(Tenant.objects.values_list("requests_used", flat=True)) == [0, 0]
    assert LogEntry.objects.count() == 2
