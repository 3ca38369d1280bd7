"""Bad input to the admin is a 400, never a 500, on SQLite and PostgreSQL: an action's
selected rows that are not ids of the list, a query string holding a NUL (Django's test
client, the real admin; PostgreSQL in a subprocess on a scratch database)."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import HashId, Tenant
from tests.conftest import run_on_database, scratch_database
from tests.guard.admin_nul_probe import PAGES

pytestmark = pytest.mark.django_db

# (list, action, a selected "row" that is no id of it)
NOT_IDS = [
    ("accounts/tenant", "reset_quota", "abc"),
    ("accounts/tenant", "reset_quota", "\x00"),
    ("accounts/hashid", "revoke", "99999999999999999999999"),  # past SQLite's 64 bits
    ("capture/capturesession", "delete_selected", "not-a-uuid"),
    ("auth/user", "delete_selected", "1.5"),
]


@pytest.mark.parametrize(("page", "action", "value"), NOT_IDS, ids=[repr(v) for *_, v in NOT_IDS])
def test_an_action_on_rows_that_are_not_ids_is_a_400(
    admin_client: Client, page: str, action: str, value: str
) -> None:
    """Django filtered pk__in by the posted values as they came: ValueError, OverflowError
    (SQLite) or a NUL PostgreSQL refuses, each a 500 with its traceback in the log."""
    tenant = Tenant.objects.create(name="acme", requests_used=3)
    HashId.issue(tenant)
    data = {"action": action, "_selected_action": [value], "post": "yes"}
    response = admin_client.post(f"/admin/{page}/", data)
    assert response.status_code == 400
    tenant.refresh_from_db()
    assert tenant.requests_used == 3 and not HashId.objects.filter(revoked_at__isnull=False)
    assert User.objects.count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tenant_id_past_64_bits_in_the_revoke_address_is_a_404(
    admin_client: Client, method: str
) -> None:
    """The tenant page's Revoke button's address: its tenant id, looked up as a foreign
    key, is not bound by Django to the column's range (an OverflowError on SQLite: a 500)."""
    admin_client.raise_request_exception = False
    tenant = Tenant.objects.create(name="acme")
    record = HashId.issue(tenant).record
    for tenant_id in ("99999999999999999999999", str(tenant.pk + 1)):
        url = f"/admin/accounts/tenant/{tenant_id}/revoke/{record.pk}/"
        assert getattr(admin_client, method)(url).status_code == 404
    record.refresh_from_db()
    assert not record.is_revoked


PAST_64_BITS = "99999999999999999999999"
# A list address whose query string holds a number out of range: a foreign key's filter past
# SQLite's 64 bits, a date hierarchy's year past datetime's.
OUT_OF_RANGE = [
    f"/admin/accounts/hashid/?tenant={PAST_64_BITS}",
    f"/admin/liveness/livenesscheck/?tenant={PAST_64_BITS}",
    f"/admin/calibration/calibration/?tenant={PAST_64_BITS}",
    f"/admin/auth/user/?groups={PAST_64_BITS}",
    "/admin/liveness/livenesscheck/?created_at__year=99999999999",
    "/admin/guard/refusal/?day__year=99999999999",
    # datetime's last year: its period would end on 1 January 10000 (ValueError)
    "/admin/liveness/livenesscheck/?created_at__year=9999",
    "/admin/guard/refusal/?day__year=9999",
    "/admin/guard/refusal/?day__year=2026&day__year=9999",  # Django reads the last
]


@pytest.mark.parametrize("page", OUT_OF_RANGE)
def test_a_number_out_of_range_in_a_list_query_is_a_400(admin_client: Client, page: str) -> None:
    """Each would be an OverflowError (SQLite's integer, or datetime's year): a 500."""
    admin_client.raise_request_exception = False
    assert admin_client.get(page).status_code == 400
    in_range = page.replace(PAST_64_BITS, "1").replace("99999999999", "2026")
    in_range = in_range.replace("=9999", "=2026")
    assert admin_client.get(in_range).status_code == 200


def test_an_action_on_ids_still_runs(admin_client: Client) -> None:
    tenant = Tenant.objects.create(name="acme", requests_used=3)
    data = {"action": "reset_quota", "_selected_action": [str(tenant.pk)]}
    assert admin_client.post("/admin/accounts/tenant/", data).status_code == 302
    tenant.refresh_from_db()
    assert tenant.requests_used == 0


def nul_statuses(database_url: str) -> dict[str, Any]:
    return run_on_database("tests.guard.admin_nul_probe", database_url)


EXPECTED = {page: 400 for page in PAGES if "%00" in page} | {"/admin/accounts/tenant/": 200}


def test_a_nul_in_an_admin_query_string_is_a_400_on_postgresql() -> None:
    """PostgreSQL refuses a NUL in a string (psycopg's ValueError): a list filter or an
    autocomplete term holding one must not be a 500 to any staff user who may view the list."""
    with scratch_database("facia_admin_nul") as url:
        found = nul_statuses(url)
    assert found["vendor"] == "postgresql"
    assert found["statuses"] == EXPECTED


def test_a_nul_in_an_admin_query_string_is_a_400_on_sqlite(admin_client: Client) -> None:
    for page, status in EXPECTED.items():
        assert admin_client.get(page).status_code == status, page
