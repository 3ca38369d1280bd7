"""A list is filtered by its query string only on what its filters offer.

Django's admin accepts a lookup on any of the model's own fields, and on one step through a
relation, whatever the page shows: a user who may view tenants, and nothing else, read the
active calibration's and the shadow candidate's maps and thresholds digit by digit, and learnt
which tenants have check records, through ``?field__lookup=`` on the tenant list. Django's own
user and group lists (as registered here) did the same with the admin log and memberships."""

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from guard.adminperms import OfferedFiltersAdmin
from liveness.models import LivenessCheck
from tests.guard.test_admin_permissions import World, changelist, make_world, only, staff

pytestmark = pytest.mark.django_db


@pytest.fixture(name="world")
def world_fixture() -> World:
    return make_world()


# Every app with a list in the admin: ours, and Django's users and groups as registered here.
OWN_APPS = {"accounts", "auth", "calibration", "capture", "guard", "liveness"}


def tenant_viewer() -> Client:
    """A staff user who may view tenants and nothing else."""
    user = User.objects.create_user("tenant-viewer", is_staff=True)
    user.user_permissions.set([Permission.objects.get(codename="view_tenant")])
    client = Client()
    client.force_login(user)
    return client


def listed(client: Client, label: str, query: str) -> Any:
    return client.get(f"{changelist(label)}?{query}")


def test_a_tenant_viewer_cannot_read_the_shadow_threshold_through_the_query(world: World) -> None:
    viewer = tenant_viewer()
    assert (world.tenant.shadow_calibration or {})["threshold"] == 0.8
    for query in (
        "shadow_calibration__threshold__startswith=0.8",  # listed the tenant (0.7 did not)
        "shadow_calibration__regex=0%5C.8",
        "calibration__maps__frame__a__startswith=1",
        "calibration__isnull=False",
        "checks__isnull=False",  # whether it has check records: the usage page's business
        "calibrations__isnull=False",
    ):
        response = listed(viewer, "accounts.tenant", query)
        assert response.status_code == 400, query
        assert world.tenant.name not in response.content.decode()


def test_a_user_viewer_cannot_read_the_admin_log_through_the_query(world: World) -> None:
    """With ``view_user`` alone, ``?logentry__isnull=False`` listed the accounts that wrote
    history entries and ``?logentry=N`` the author of entry N (a log they may not read); the
    group filter named every group, those of no listed account too."""
    author = User.objects.create_user("author")
    LogEntry.objects.log_actions(
        user_id=author.pk, queryset=[world.tenant], action_flag=2, single_object=True
    )
    entry = LogEntry.objects.get(user=author)
    Group.objects.create(name="Night shift")  # nobody in it
    viewer = only("auth.view_user")
    for query in ("logentry__isnull=False", f"logentry={entry.pk}", "user_permissions=1"):
        response = listed(viewer, "auth.user", query)
        assert response.status_code == 400, query
        assert "author" not in response.content.decode(), query
    page = listed(viewer, "auth.user", "")
    assert page.status_code == 200 and "Night shift" not in page.content.decode()


def test_a_group_viewer_cannot_read_memberships_through_the_query(world: World) -> None:
    """With ``view_group`` alone, ``?user=N`` listed the groups of account N, whom that user
    may not view."""
    operators = world.rows["auth.group"]
    assert isinstance(operators, Group)
    world.bystander.groups.add(operators)
    viewer = only("auth.view_group")
    for query in (f"user={world.bystander.pk}", "user__isnull=False", "name__startswith=op"):
        assert listed(viewer, "auth.group", query).status_code == 400, query
    assert listed(viewer, "auth.group", "q=oper").context["cl"].result_count == 1


def own_admins() -> list[tuple[str, Any]]:
    return sorted(
        (model._meta.label_lower, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in OWN_APPS
    )


@pytest.mark.parametrize(("label", "model_admin"), own_admins())
def test_every_field_a_list_does_not_offer_is_refused(
    world: World, label: str, model_admin: Any
) -> None:
    """Even a superuser's list: the query string names no field beyond its filters'."""
    assert isinstance(model_admin, OfferedFiltersAdmin)
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="An-0ld-Passw0rd"))
    offered = model_admin.offered_fields(None)
    fields = [f.name for f in model_admin.model._meta.get_fields() if f.name not in offered]
    assert fields
    for name in fields:
        assert listed(client, label, f"{name}__isnull=True").status_code == 400, name
    for name in offered:
        assert listed(client, label, f"{name}__isnull=True").status_code == 200, name


def test_the_offered_filters_still_filter(world: World) -> None:
    viewer = staff()
    tenant = world.tenant.pk
    check = world.rows["liveness.livenesscheck"]
    assert isinstance(check, LivenessCheck)
    day = check.created_at
    pages = {
        ("accounts.tenant", "is_active__exact=1&profile__exact=fast&challenge__exact=none"),
        ("accounts.hashid", f"state=active&tenant__id__exact={tenant}"),
        ("liveness.livenesscheck", f"verdict=live&tenant__id__exact={tenant}"),
        ("liveness.livenesscheck", f"created_at__year={day.year}&created_at__month={day.month}"),
        ("calibration.calibration", f"tenant__id__exact={tenant}&profile__exact=fast"),
        ("guard.refusal", "tenant=0&status__exact=401"),
        ("capture.capturesession", "state__exact=open"),
        ("guard.counter", "scope__exact=auth"),
        ("auth.user", "is_active__exact=1&is_staff__exact=0"),
    }
    for label, query in sorted(pages):
        response = listed(viewer, label, query)
        assert response.status_code == 200, (label, query)
        assert response.context["cl"].result_count >= 1, (label, query)
