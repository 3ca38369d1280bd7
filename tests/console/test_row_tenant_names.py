"""One rule for a tenant's name in the lists of rows that belong to tenants (checks,
calibrations, hash_ids, refusals, throttle windows): each row shows its own tenant's name, and
a tenant filter names only the tenants of its rows, so whoever may view those rows but not
tenants reads no other tenant's name there (docs/operator/admin.md, Permissions)."""

import time
from itertools import count

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Tenant
from guard.models import Counter, Refusal
from guard.throttle import RATE_SCOPE
from liveness.models import LivenessCheck

pytestmark = pytest.mark.django_db
_serial = count()


def only(*perms: str) -> Client:
    user = User.objects.create_user(f"rows{next(_serial)}", is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def listed(client: Client, model: str) -> str:
    response = client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 200
    return response.content.decode()


def test_each_list_names_its_rows_tenants_and_no_other() -> None:
    rows, other = Tenant.objects.create(name="Rowsowner"), Tenant.objects.create(name="Hiddenco")
    LivenessCheck.objects.create(tenant=rows, is_live=True, score=0.9, latency_ms=10)
    Refusal.objects.create(day=timezone.now().date(), status=429, code="rate", tenant_id=rows.pk)
    Counter.objects.create(scope=RATE_SCOPE, subject=str(rows.pk), bucket=int(time.time()))
    pages = {
        "liveness_livenesscheck": only("liveness.view_livenesscheck"),
        "guard_refusal": only("guard.view_refusal"),
        "guard_counter": only("guard.view_counter"),
    }
    for model, client in pages.items():
        page = listed(client, model)
        assert "Rowsowner" in page, model
        assert "Hiddenco" not in page, model
    assert other.pk  # a tenant with no rows: named nowhere above
