"""Deleting a tenant while its checks run (PostgreSQL: SQLite's write transactions already
take the whole database, so a check cannot commit inside a deletion there)."""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Model
from django.db.models.deletion import ProtectedError, RestrictedError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import HashId, Tenant
from calibration.models import Calibration, Evaluation
from capture.models import CaptureSession
from guard.deletion import protecting
from guard.models import Refusal
from liveness.models import LivenessCheck
from tests.conftest import run_on_database, scratch_database, stored_calibration
from tests.console.test_admin_pages import make_evaluation
from tests.guard.test_bulk_delete import staff
from tests.servers.processes import manage


def test_a_check_meanwhile_waits_for_the_deletion_then_gets_401() -> None:
    """Unlocked, the check's unit and record committed between the deletion of the tenant's
    checks and of its row: the deletion failed on the record's foreign key (the admin's
    500; 12 of 15 deletions under /liveness traffic). The tenant's row is now locked first:
    the check waits for it, then finds no tenant."""
    with scratch_database("facia_tenant_delete") as url:
        outcome = run_on_database("tests.accounts.tenant_delete_race", url, timeout=180)
    assert outcome == {
        "vendor": "postgresql",
        "deletion": "deleted",
        "check": 401,
        "tenant_left": False,
        "records_left": 0,
    }


# What deleting one tenant of ``with_rows`` deletes beside the tenant itself, as the delete
# pages count it (the calibration and the evaluation: one each; the hash_ids and the day's
# refusal counts: two each).
def counted_rows(n: int) -> list[str]:
    return [
        "Calibrations: 1",
        f"Capture sessions: {n:,}",
        "Evaluations: 1",
        "Hash_ids: 2",
        f"Liveness checks: {n:,}",
        "Refusals: 2",
    ]


def with_rows(name: str, n: int) -> Tenant:
    """A tenant with ``n`` check records and ``n`` capture sessions (opened by one of its two
    hash_ids), a calibration, an evaluation run as it, and a day's refusal counts (kept by
    its id, no foreign key)."""
    tenant = Tenant.objects.create(name=name)
    for code, status in (("invalid_credentials", 401), ("limit_reached", 429)):
        Refusal.objects.create(
            day=timezone.now().date(), code=code, status=status, tenant_id=tenant.pk, hits=3
        )
    credential = HashId.issue(tenant).record
    HashId.issue(tenant)
    stored_calibration(tenant)
    make_evaluation(tenant=tenant)
    LivenessCheck.objects.bulk_create(
        LivenessCheck(tenant=tenant, is_live=True, score=0.9, latency_ms=40.0) for _ in range(n)
    )
    expires = timezone.now() + timedelta(hours=1)
    CaptureSession.objects.bulk_create(
        CaptureSession(
            tenant=tenant, credential=credential, token_digest="0" * 64, expires_at=expires
        )
        for _ in range(n)
    )
    return tenant


def rows_of(tenant_ids: list[int]) -> int:
    """Every row left that belongs to the tenants ``tenant_ids``, the tenants' own included."""
    models: list[type[Model]] = [
        LivenessCheck,
        CaptureSession,
        HashId,
        Calibration,
        Evaluation,
        Refusal,
    ]
    related = sum(m._default_manager.filter(tenant_id__in=tenant_ids).count() for m in models)
    return related + Tenant.objects.filter(pk__in=tenant_ids).count()


def items(page: str) -> list[str]:
    """The list items of a delete page's ``<ul>``s, tags stripped."""
    found = re.findall(r"<li>(.*?)(?=</?li>|</?ul>)", page, re.S)
    return [re.sub(r"<[^>]+>", "", item).strip() for item in found]


def related_links(page: str) -> list[str]:
    """The page's links to a row of a model other than the tenant."""
    return re.findall(r'href="/admin/(?!accounts/tenant/)\w+/\w+/[^/"]+/change/"', page)


def delete_page(client: Client, tenant: Tenant) -> tuple[str, int]:
    """The tenant's delete confirmation page and the queries it took."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:accounts_tenant_delete", args=[tenant.pk]))
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def delete_confirmed(client: Client, tenant: Tenant) -> int:
    """The page's "Yes, I'm sure" (its POST); the queries it took."""
    url = reverse("admin:accounts_tenant_delete", args=[tenant.pk])
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    return len(queries)


@pytest.mark.django_db
def test_the_delete_page_counts_the_rows_and_links_none(admin_client: Client) -> None:
    """Django's page lists and links every row deleted with the tenant: 500,000 check records
    took it 40.7 s, 59 MB of HTML and 721 MB of a worker's memory (PostgreSQL), and past
    GUNICORN_TIMEOUT the worker is killed, the tenant never deleted. Its refusal counts, which
    its post_delete takes (no foreign key: the Collector does not see them), are counted too:
    the page left them out."""
    delete_page(admin_client, with_rows("Caches", 0))  # Django's first reads cached
    small, large = with_rows("Small", 10), with_rows("Large", 2000)
    small_page, small_queries = delete_page(admin_client, small)
    large_page, large_queries = delete_page(admin_client, large)
    assert items(large_page) == [
        "Tenants: 1",
        *counted_rows(2000),
        "Tenant: Large",
        *counted_rows(2000),
    ]
    assert related_links(large_page) == []
    assert large_queries == small_queries
    assert len(items(small_page)) == len(items(large_page))


@pytest.mark.django_db
def test_the_deletion_deletes_every_row_in_as_many_queries_for_10_or_2000(
    admin_client: Client,
) -> None:
    """The deletion deletes each model's rows with one DELETE (Django's Collector deletes in
    bulk a model no signal and no cascade hangs below), never loading them one by one."""
    delete_confirmed(admin_client, with_rows("Caches", 0))  # Django's first reads cached
    small, large = with_rows("Small", 10), with_rows("Large", 2000)
    ids = [small.pk, large.pk]
    assert delete_confirmed(admin_client, small) == delete_confirmed(admin_client, large)
    assert rows_of(ids) == 0


@pytest.mark.django_db
def test_the_delete_action_counts_the_rows_of_every_tenant_then_deletes_them(
    admin_client: Client,
) -> None:
    first, second = with_rows("First", 10), with_rows("Second", 2000)
    ids = [first.pk, second.pk]
    data = {"action": "delete_selected", "_selected_action": [str(pk) for pk in ids]}
    page = admin_client.post(reverse("admin:accounts_tenant_changelist"), data)
    text = page.content.decode()
    assert items(text) == [
        "Tenants: 2",
        "Calibrations: 2",
        "Capture sessions: 2,010",
        "Evaluations: 2",
        "Hash_ids: 4",
        "Liveness checks: 2,010",
        "Refusals: 4",
        "Tenant: First",
        "Tenant: Second",
        "With these 2 tenants:",
        "Calibrations: 2",
        "Capture sessions: 2,010",
        "Evaluations: 2",
        "Hash_ids: 4",
        "Liveness checks: 2,010",
        "Refusals: 4",
    ]
    assert related_links(text) == []
    admin_client.post(reverse("admin:accounts_tenant_changelist"), {**data, "post": "yes"})
    assert rows_of(ids) == 0


def staff_who_may_delete(*perms: str) -> Client:
    """A logged-in staff user who may view and delete tenants, plus ``perms``."""
    return staff("accounts.view_tenant", "accounts.delete_tenant", *perms)


@pytest.mark.django_db
def test_a_user_who_may_not_delete_the_checks_may_not_delete_a_tenant_with_checks() -> None:
    """As Django's own page: each registered model with rows to delete needs its delete
    permission; a model with none needs nothing."""
    client = staff_who_may_delete(
        "accounts.delete_hashid",
        "capture.delete_capturesession",
        "calibration.delete_evaluation",
        "guard.delete_refusal",
    )
    tenant = with_rows("Checked", 3)
    page, _ = delete_page(client, tenant)
    assert "your account doesn't have permission to delete the following types" in page
    assert items(page) == ["liveness check"]
    response = client.post(
        reverse("admin:accounts_tenant_delete", args=[tenant.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    LivenessCheck.objects.filter(tenant=tenant).delete()
    delete_confirmed(client, tenant)
    assert rows_of([tenant.pk]) == 0


ALL_BUT_REFUSALS = (
    "accounts.delete_hashid",
    "capture.delete_capturesession",
    "calibration.delete_evaluation",
    "liveness.delete_livenesscheck",
)


@pytest.mark.django_db
def test_a_user_who_may_not_delete_refusals_may_not_delete_a_tenant_with_refusal_counts() -> None:
    """Its refusal counts go on its post_delete, not through Django's Collector, so Django's
    page asked nothing of them: a user without ``delete_refusal`` saw "Refusals: 2" with no
    notice and deleted them with the tenant. They are asked as the checks are: the page names
    them, its "Yes" (and the list action's) answers 403 and nothing is deleted; a tenant with
    none needs nothing."""
    client = staff_who_may_delete(*ALL_BUT_REFUSALS)
    tenant = with_rows("Refused", 3)
    page, _ = delete_page(client, tenant)
    assert "your account doesn't have permission to delete the following types" in page
    assert items(page) == ["refusal"]
    before = rows_of([tenant.pk])
    url = reverse("admin:accounts_tenant_delete", args=[tenant.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    data = {"action": "delete_selected", "_selected_action": [str(tenant.pk)], "post": "yes"}
    assert client.post(reverse("admin:accounts_tenant_changelist"), data).status_code == 403
    assert rows_of([tenant.pk]) == before
    assert Refusal.objects.filter(tenant_id=tenant.pk).count() == 2
    Refusal.objects.filter(tenant_id=tenant.pk).delete()
    delete_confirmed(client, tenant)
    assert rows_of([tenant.pk]) == 0


@pytest.mark.django_db
def test_rows_that_protect_a_tenant_are_counted_per_model() -> None:
    """No relation protects a tenant today; a PROTECT or RESTRICT one added would refuse the
    deletion with its rows counted, as the other rows are."""
    with_rows("Kept", 2)
    rows: set[Model] = {*LivenessCheck.objects.all(), *HashId.objects.all()[:1]}
    expected = ["Hash_ids: 1", "Liveness checks: 2"]
    assert protecting(ProtectedError("protected", rows)) == expected
    assert protecting(RestrictedError("restricted", rows)) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_a_tenant_deleted_through_the_orm_takes_its_refusal_counts(how: str) -> None:
    """Kept by the tenant's id, with no foreign key to cascade from, they outlived it (shown as
    "deleted tenant #N"); another tenant's counts and those of no tenant stay."""
    doomed, kept = with_rows("Doomed", 1), with_rows("Kept", 1)
    ids = [doomed.pk]  # the instance's pk is None once deleted
    Refusal.objects.create(day=timezone.now().date(), code="x", status=401, client="192.0.2.0/24")
    if how == "instance":
        doomed.delete()
    else:
        Tenant.objects.filter(name="Doomed").delete()
    assert rows_of(ids) == 0
    assert Refusal.objects.filter(tenant_id=kept.pk).count() == 2
    assert Refusal.objects.filter(tenant_id=0).count() == 1


# Before accounts 0013: a tenant kept, one deleted (its counts left behind), and a client's.
FILL = """
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
old = MigrationExecutor(connection).loader.project_state(
    [("accounts", "0012_tenant_rate_limit_at_least_one"), ("guard", "0002_refusal")]
).apps
Tenant, Refusal = old.get_model("accounts", "Tenant"), old.get_model("guard", "Refusal")
kept, gone = Tenant.objects.create(name="kept"), Tenant.objects.create(name="gone")
for tenant_id, client in ((kept.pk, ""), (gone.pk, ""), (0, "192.0.2.0/24")):
    Refusal.objects.create(day="2026-12-01", code="c", status=401, tenant_id=tenant_id,
                           client=client, hits=2)
gone.delete()
"""

CHECK = """
from guard.models import Refusal
print(sorted((r.tenant_id > 0, r.client) for r in Refusal.objects.all()))
"""


@pytest.mark.slow  # five manage.py processes
def test_the_counts_of_tenants_deleted_before_are_deleted_by_the_migration(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "migrate", "accounts", "0012_tenant_rate_limit_at_least_one", "--noinput", "-v0")
    manage(env, "shell", "-c", FILL)
    manage(env, "migrate", "--noinput", "-v0")
    assert manage(env, "shell", "-c", CHECK).splitlines()[-1] == (
        "[(False, '192.0.2.0/24'), (True, '')]"
    )
    manage(env, "migrate", "accounts", "0012_tenant_rate_limit_at_least_one", "--noinput", "-v0")
