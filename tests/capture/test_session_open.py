"""POST /sessions: a hash_id opens a capture session (Django's test client, real engine)."""

from typing import Any

import pytest
from django.test.client import Client

from accounts.models import HashId, Tenant
from capture import service
from capture.models import CaptureSession
from tests.capture.sessions import post

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_create_refuses_bad_hash_ids_and_methods(db: None, client: Client) -> None:
    assert post(client, "/sessions", {"hash_id": "nope"}).json() == {
        "message": "Invalid credentials"
    }
    assert post(client, "/sessions", "[").status_code == 400
    response = client.get("/sessions")
    assert response.status_code == 405 and response["Allow"] == "POST"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deleted", ["hash_id", "tenant"])
def test_a_session_opened_as_its_hash_id_is_deleted_is_refused(
    make_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch, deleted: str
) -> None:
    """The hash_id (or its tenant) deleted between its authentication and the new session's
    row: the row failed its foreign key, a 503 "database unavailable". Now 401, as that
    hash_id gets from then on, and no session."""
    tenant, secret = make_tenant(request_limit=3)
    opened = service.open_session

    def delete_then_open(owner: Tenant, credential: HashId) -> service.Opened:
        if deleted == "hash_id":
            HashId.objects.filter(pk=credential.pk).delete()
        else:
            Tenant.objects.filter(pk=owner.pk).delete()
        return opened(owner, credential)

    monkeypatch.setattr(service, "open_session", delete_then_open)
    response = post(client, "/sessions", {"hash_id": secret})
    assert (response.status_code, response.json()) == (401, {"message": "Invalid credentials"})
    assert not CaptureSession.objects.exists()
