"""Admin flows: create a tenant, hash_id shown once, issue/revoke, reset quota, search."""

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import HashId, Tenant
from tests.conftest import LIVE_JPG, Post, data_uri

SECRET = re.compile(r"New hash_id for .+?: <code[^>]*>(\S+?)</code>")
INLINE_MANAGEMENT = {
    "hash_ids-TOTAL_FORMS": "0",
    "hash_ids-INITIAL_FORMS": "0",
    "hash_ids-MIN_NUM_FORMS": "0",
    "hash_ids-MAX_NUM_FORMS": "1000",
}


def shown_secrets(response: Any) -> list[str]:
    """The hash_ids the rendered page shows in its messages."""
    return SECRET.findall(response.content.decode())


def add_tenant(admin_client: Any, follow: bool = True, **fields: str) -> Any:
    data = {
        "name": "Acme",
        "is_active": "on",
        "request_limit": "",
        "threshold": "0.5",
        "profile": "fast",
        "crop_policy": "judge",
        "challenge": "none",
        "challenge_band": "0.75",
    }
    return admin_client.post(
        "/admin/accounts/tenant/add/", {**data, **fields, **INLINE_MANAGEMENT}, follow=follow
    )


def run_action(admin_client: Any, model: str, action: str, *pks: int) -> Any:
    return admin_client.post(
        f"/admin/accounts/{model}/",
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )


@pytest.mark.usefixtures("warm_engine")
def test_created_tenant_gets_a_hash_id_shown_once(admin_client: Any, post_liveness: Post) -> None:
    response = add_tenant(admin_client, request_limit="10")
    assert response.status_code == 200
    (secret,) = shown_secrets(response)
    assert len(secret) >= 32
    tenant = Tenant.objects.get(name="Acme")
    assert tenant.request_limit == 10
    assert HashId.objects.get(tenant=tenant).prefix == secret[:8]
    # Shown once: neither the next page nor the tenant page carries it.
    again = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/change/")
    assert secret not in again.content.decode()
    assert secret[:8] in again.content.decode()
    assert secret not in admin_client.get("/admin/accounts/hashid/").content.decode()
    ok = post_liveness({"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)})
    assert ok.status_code == 201


@pytest.mark.usefixtures("warm_engine")
def test_issue_and_revoke_from_admin(admin_client: Any, post_liveness: Post) -> None:
    tenant = Tenant.objects.create(name="Rotating")
    (secret,) = shown_secrets(run_action(admin_client, "tenant", "issue_hash_id", tenant.pk))
    assert secret not in admin_client.get("/admin/accounts/tenant/").content.decode()
    body = {"hash_id": secret, "selfie_image": data_uri(LIVE_JPG)}
    assert post_liveness(body).status_code == 201
    record = HashId.objects.get(tenant=tenant)
    response = run_action(admin_client, "hashid", "revoke", record.pk)
    assert "Revoked 1 hash_id(s)." in response.content.decode()
    record.refresh_from_db()
    assert record.revoked_at is not None
    revoked = post_liveness(body)
    assert revoked.status_code == 401
    assert revoked.json() == {"message": "Invalid credentials"}


def test_reset_quota_action(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Busy", request_limit=3, requests_used=3)
    response = run_action(admin_client, "tenant", "reset_quota", tenant.pk)
    assert "Quota reset for 1 tenant(s)." in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


def test_changelist_shows_usage_and_search(admin_client: Any) -> None:
    Tenant.objects.create(name="Alpha", request_limit=10, requests_used=4)
    Tenant.objects.create(name="Beta")
    page = admin_client.get("/admin/accounts/tenant/", {"q": "alph"}).content.decode()
    assert "Alpha" in page and "Beta" not in page
    assert ">6<" in page  # remaining quota
    assert "unlimited" in admin_client.get("/admin/accounts/tenant/").content.decode()


def test_editing_a_tenant_keeps_concurrent_usage(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Edited", request_limit=10)
    form_page = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/change/")
    assert form_page.status_code == 200
    Tenant.reserve_unit(tenant.pk)  # a request lands while the operator edits the form
    data = {
        "name": "Edited",
        "is_active": "on",
        "request_limit": "20",
        "threshold": "0.7",
        "profile": "fast",
        "crop_policy": "judge",
        "challenge": "none",
        "challenge_band": "0.75",
    }
    admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/change/", {**data, **INLINE_MANAGEMENT})
    tenant.refresh_from_db()
    assert (tenant.request_limit, tenant.threshold, tenant.requests_used) == (20, 0.7, 1)


def test_threshold_is_validated(admin_client: Any) -> None:
    response = add_tenant(admin_client, name="Bad", threshold="1.5")
    assert not Tenant.objects.filter(name="Bad").exists()
    assert "less than or equal to 1" in response.content.decode()


def test_hash_ids_cannot_be_added_without_the_tenant_page(admin_client: Any) -> None:
    assert admin_client.get("/admin/accounts/hashid/add/").status_code == 403


def stored_text() -> str:
    """Every row of every table as the database holds it, and every session decoded (the
    admin's messages live there, signed but not encrypted)."""
    from django.contrib.sessions.models import Session
    from django.db import connection

    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            parts.append(repr(cursor.fetchall()))
    parts += [repr(session.get_decoded()) for session in Session.objects.all()]
    return "\n".join(parts)


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, fed by the "django" logger as well (it does not propagate to the root)."""
    caplog.set_level(logging.DEBUG)
    django_logger = logging.getLogger("django")
    django_logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        django_logger.removeHandler(caplog.handler)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every secret HashId.issue draws (the real draw, recorded as it is made)."""
    from accounts import models

    draws: list[str] = []
    original = models.new_secret

    def recorded() -> str:
        draws.append(original())
        return draws[-1]

    monkeypatch.setattr(models, "new_secret", recorded)
    return draws


@pytest.mark.parametrize("how", ["action", "button", "add form"])
def test_an_issued_hash_id_is_stored_nowhere(
    admin_client: Any, every_log: pytest.LogCaptureFixture, drawn: list[str], how: str
) -> None:
    """The secret is in the answer to the POST that issued it and nowhere else: not in the
    session (a message waiting for a redirect nobody follows stayed there 14 days), a cookie,
    a log record or the admin's history."""
    if how == "action":
        tenant = Tenant.objects.create(name="Kept")
        data = {"action": "issue_hash_id", "_selected_action": tenant.pk}
        response = admin_client.post("/admin/accounts/tenant/", data)
    elif how == "button":  # the tenant page's "Issue a new hash_id"
        tenant = Tenant.objects.create(name="Kept")
        response = admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/issue/")
    else:
        response = add_tenant(admin_client, name="Kept", follow=False)
    (secret,) = drawn
    assert HashId.tenant_for(secret) == Tenant.objects.get(name="Kept")
    stored = stored_text()
    assert secret[:8] in stored and "Issued hash_id" in stored  # the search sees the rows
    assert secret not in stored
    assert all(secret not in cookie.value for cookie in admin_client.cookies.values())
    assert all(secret not in cookie.value for cookie in response.cookies.values())
    assert "POST /admin/accounts/tenant/" in every_log.text  # the search sees the log
    assert secret not in every_log.text
    # Shown once, in the answer itself (nothing to follow), with its Copy button; never cached.
    assert response.status_code == 200
    assert shown_secrets(response) == [secret]
    assert 'data-copy="new-hash-id-' in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert secret not in admin_client.get("/admin/accounts/tenant/").content.decode()
