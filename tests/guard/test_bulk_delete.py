"""Every list's "Delete selected" through the real admin (guard.deletion): its page counts the
rows it deletes, whatever their number, its form carries the list's "Select all" rather than
each row, and its "Yes, I'm sure" deletes them, with Django's refusals kept (rows that protect
the selection, rows the user may not delete)."""

import re
from typing import Any

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Tenant
from bench.bulk_delete import ConfirmForm
from guard.deletion import LISTED
from liveness.models import LivenessCheck

pytestmark = pytest.mark.django_db

CHECKS = reverse("admin:liveness_livenesscheck_changelist")
ROW_LINK = re.compile(r'href="/admin/\w+/\w+/\d+/change/"')


def with_checks(name: str, n: int) -> Tenant:
    tenant = Tenant.objects.create(name=name)
    LivenessCheck.objects.bulk_create(
        LivenessCheck(tenant=tenant, is_live=True, score=0.9, latency_ms=40.0) for _ in range(n)
    )
    return tenant


def select_all(client: Client, url: str, model: Any, **post: str) -> Any:
    """The list at ``url``'s "Select all" then "Delete selected", as its page posts them (one
    row's box ticked, ``select_across`` set by the "Select all" link)."""
    first = model.objects.order_by("pk").values_list("pk", flat=True).first()
    data = {"action": "delete_selected", "select_across": "1", "index": "0", **post}
    return client.post(url, {**data, "_selected_action": [str(first)]})


def confirmed(client: Client, url: str, page: str) -> Any:
    """The page's "Yes, I'm sure": its form's fields posted as a browser posts them."""
    parser = ConfirmForm()
    parser.feed(page)
    fields = parser.fields()
    assert fields is not None, "the page has no form to confirm"
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return client.post(url, data)


def items(page: str) -> list[str]:
    """The list items of the page's ``<ul>``s, tags stripped."""
    found = re.findall(r"<li>(.*?)(?=</?li>|</?ul>)", page, re.S)
    return [re.sub(r"<[^>]+>", "", item).strip() for item in found]


def form_fields(page: str) -> list[str]:
    parser = ConfirmForm()
    parser.feed(page)
    return [name for name, _ in parser.fields() or []]


def without_figures(page: str) -> str:
    """The page with its numbers (counts, ids) and CSRF token (masked anew each time) blanked."""
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
    return re.sub(r"\d[\d,]*", "N", page)


def test_select_all_of_many_check_records_counts_them_links_none_then_deletes_them(
    admin_client: Client,
) -> None:
    """Django's page linked every record (100,000: 19.5 s, 17.9 MB, +247 MB of the worker's
    peak memory) and its form named each, a POST refused with 400 past 1,000 fields: nothing
    could be deleted. Now the page is the same for 150 or 2,000 records, and it deletes them."""
    kept = with_checks("Kept", 3)
    select_all(admin_client, CHECKS, LivenessCheck)  # Django's first reads cached
    banks = {n: with_checks(f"Bank {n}", n) for n in (150, 2000)}
    urls = {n: f"{CHECKS}?tenant__id__exact={tenant.pk}" for n, tenant in banks.items()}
    pages = {}
    for n, url in urls.items():
        with CaptureQueriesContext(connection) as queries:
            page = select_all(admin_client, url, LivenessCheck).content.decode()
        pages[n] = (page, len(queries))
        assert items(page) == [f"Liveness checks: {n:,}", f"Liveness checks: {n:,}"]
        assert ROW_LINK.findall(page) == []
        assert sorted(form_fields(page)) == sorted(
            ["csrfmiddlewaretoken", "select_across", "_selected_action", "selected_count"]
            + ["action", "post"]
        )
    assert without_figures(pages[150][0]) == without_figures(pages[2000][0])
    assert pages[150][1] == pages[2000][1]
    for n, url in urls.items():
        assert confirmed(admin_client, url, pages[n][0]).status_code == 302
        assert not LivenessCheck.objects.filter(tenant=banks[n]).exists()
        entry = LogEntry.objects.order_by("pk").last()
        assert entry is not None and entry.action_flag == DELETION
        assert (entry.object_id, entry.object_repr) == (None, f"{n:,} liveness checks")
        filtered = url.split("?", 1)[1]
        assert entry.change_message == f"Selected all of the list filtered by ?{filtered}."
    assert LivenessCheck.objects.filter(tenant=kept).count() == 3
    recent = admin_client.get(reverse("admin:index")).content.decode()
    assert "2,000 liveness checks" in recent and "150 liveness checks" in recent


def test_a_few_selected_are_linked_named_and_logged_one_by_one(admin_client: Client) -> None:
    """Up to a list page's worth, the page is Django's: each row linked, named by the form
    (deleting those rows, not the list's filter), one history entry each."""
    tenant = with_checks("Few", LISTED)
    url = f"{CHECKS}?tenant__id__exact={tenant.pk}"
    page = select_all(admin_client, url, LivenessCheck).content.decode()
    assert len(ROW_LINK.findall(page)) == LISTED
    assert form_fields(page).count("_selected_action") == LISTED
    assert "select_across" not in form_fields(page)
    with_checks("Later", 1).checks.update(tenant=tenant)  # joins the filter after the page
    assert confirmed(admin_client, url, page).status_code == 302
    assert LivenessCheck.objects.filter(tenant=tenant).count() == 1
    assert LogEntry.objects.filter(action_flag=DELETION).count() == LISTED


def test_a_count_of_thousands_of_digits_posted_is_shown_cut(admin_client: Client) -> None:
    """The page's count, posted back, is formatted in the message: 5,000 digits were int()-ed
    past Python's 4,300-digit limit, a ValueError: a 500."""
    tenant = with_checks("Posted", 150)
    url = f"{CHECKS}?tenant__id__exact={tenant.pk}"
    page = select_all(admin_client, url, LivenessCheck).content.decode()
    page = re.sub(r'(name="selected_count" value=")\d+', lambda m: m[1] + "9" * 5000, page)
    admin_client.raise_request_exception = False
    again = confirmed(admin_client, url, page)
    assert again.status_code == 200
    assert f"({'9' * 20} then, 150 now): nothing was deleted" in again.content.decode()
    assert LivenessCheck.objects.filter(tenant=tenant).count() == 150


def test_a_yes_after_the_selection_changed_deletes_nothing_and_counts_again(
    admin_client: Client,
) -> None:
    tenant = with_checks("Busy", 150)
    url = f"{CHECKS}?tenant__id__exact={tenant.pk}"
    page = select_all(admin_client, url, LivenessCheck).content.decode()
    with_checks("Meanwhile", 2).checks.update(tenant=tenant)  # two checks joined meanwhile
    again = confirmed(admin_client, url, page)
    text = again.content.decode()
    assert again.status_code == 200
    assert "The selection changed since its page counted it (150 then, 152 now)" in text
    assert LivenessCheck.objects.filter(tenant=tenant).count() == 152
    assert items(text)[0] == "Liveness checks: 152"
    assert confirmed(admin_client, url, text).status_code == 302
    assert not LivenessCheck.objects.filter(tenant=tenant).exists()


def staff(*perms: str) -> Client:
    """A logged-in client of a new staff user holding only ``perms`` ("app.codename")."""
    taken = User.objects.filter(username__startswith="deleter").count()  # one per call
    user = User.objects.create_user(f"deleter{taken or ''}", is_staff=True)
    user.user_permissions.set(
        Permission.objects.get(content_type__app_label=app, codename=codename)
        for app, codename in (p.split(".") for p in perms)
    )
    client = Client()
    client.force_login(user)
    return client


def test_a_staff_user_with_delete_permission_deletes_all_the_selected_records() -> None:
    """More than 1,000 (Django's form named each row: a POST refused with 400)."""
    client = staff("liveness.view_livenesscheck", "liveness.delete_livenesscheck")
    tenant = with_checks("Staffed", 1200)
    page = select_all(client, CHECKS, LivenessCheck).content.decode()
    assert items(page) == ["Liveness checks: 1,200", "Liveness checks: 1,200"]
    assert confirmed(client, CHECKS, page).status_code == 302
    assert not LivenessCheck.objects.filter(tenant=tenant).exists()


def test_all_tenants_selected_by_a_user_who_may_not_delete_their_checks_are_refused() -> None:
    """Each model the deletion takes rows of needs its delete permission, as on Django's page."""
    client = staff("accounts.view_tenant", "accounts.delete_tenant")
    Tenant.objects.bulk_create(Tenant(name=f"Tenant {i}") for i in range(LISTED))
    with_checks("Checked", 2)
    url = reverse("admin:accounts_tenant_changelist")
    page = select_all(client, url, Tenant).content.decode()
    assert "your account doesn't have permission to delete the following types" in page
    assert items(page) == ["liveness check"]
    refused = select_all(client, url, Tenant, post="yes")
    assert refused.status_code == 403
    assert Tenant.objects.count() == LISTED + 1


def test_all_users_selected_by_a_manager_who_holds_less_than_one_of_them_are_refused() -> None:
    """The user admin answers by row (no account that carries more than the manager): each
    selected account is still asked, past a page's worth too; without it, all go."""
    client = staff("auth.view_user", "auth.delete_user")
    User.objects.bulk_create(User(username=f"clerk{i}") for i in range(LISTED + 20))
    User.objects.create_superuser("root")
    url = reverse("admin:auth_user_changelist")
    page = select_all(client, url, User).content.decode()
    assert items(page) == ["user"]
    assert select_all(client, url, User, post="yes").status_code == 403
    assert User.objects.count() == LISTED + 22
    plain = f"{url}?is_superuser__exact=0&is_staff__exact=0"
    page = select_all(client, plain, User).content.decode()
    assert items(page)[0] == f"Users: {LISTED + 20}"
    assert confirmed(client, plain, page).status_code == 302
    assert sorted(User.objects.values_list("username", flat=True)) == ["deleter", "root"]


def test_all_groups_selected_by_a_manager_are_refused_when_one_carries_more() -> None:
    client = staff("auth.view_group", "auth.delete_group")
    Group.objects.bulk_create(Group(name=f"team {i}") for i in range(LISTED + 5))
    Group.objects.get(name="team 7").permissions.add(
        Permission.objects.get(codename="change_tenant")
    )
    url = reverse("admin:auth_group_changelist")
    assert items(select_all(client, url, Group).content.decode()) == ["group"]
    assert select_all(client, url, Group, post="yes").status_code == 403
    assert Group.objects.count() == LISTED + 5


def test_users_with_history_protect_the_selection() -> None:
    """Rows that protect the selection (here the history a user wrote, which would go with
    them) refuse it, counted, on "Select all" past a page's worth too."""
    client = Client()
    client.force_login(User.objects.create_superuser("root"))
    User.objects.bulk_create(User(username=f"clerk{i}") for i in range(LISTED + 5))
    author = User.objects.get(username="clerk3")
    LogEntry.objects.create(user=author, action_flag=DELETION, object_repr="something")
    url = f"{reverse('admin:auth_user_changelist')}?is_superuser__exact=0"
    page = select_all(client, url, User).content.decode()
    assert "would require deleting the following protected related objects" in page
    assert items(page) == ["clerk3: 1 history entries (deactivate the account instead)"]
    assert select_all(client, url, User, post="yes").status_code == 200
    assert User.objects.count() == LISTED + 6
