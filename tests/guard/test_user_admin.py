"""Whoever may edit accounts (``auth.change_user``, ``auth.change_group``) gets no further than
their own permissions: no ``is_superuser`` for themselves, no permission or group they do not
hold, and no change, deletion or new password for an account that carries more than they do
(setting it, then logging in as that account, would hand them its permissions). Through the
admin's own forms, with the test client; a superuser still does all of it."""

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.usernames import RESERVED_USERNAME

pytestmark = pytest.mark.django_db

PASSWORD = "An-0ld-Passw0rd"
NEW_PASSWORD = "N3w-Passw0rd!"
# What the account manager holds: editing users and groups, viewing tenants.
MANAGER_PERMS = (
    "auth.view_user",
    "auth.change_user",
    "auth.delete_user",
    "auth.view_group",
    "auth.change_group",
    "accounts.view_tenant",
)


def permission(name: str) -> Permission:
    app, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app, codename=codename)


def account(username: str, *perms: str, **fields: Any) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True, **fields)
    user.user_permissions.set([permission(p) for p in perms])
    return user


@pytest.fixture
def manager() -> User:
    return account("manager", *MANAGER_PERMS)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_of(user: User, **changes: Any) -> dict[str, Any]:
    """The user's change form as the admin's page would post it, with ``changes``."""
    joined = user.date_joined
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        **changes,
    }
    # A ticked box posts "on", an unticked one nothing.
    return {
        key: "on" if value is True else value for key, value in data.items() if value is not False
    }


def change(client: Client, user: User, **changes: Any) -> Any:
    url = reverse("admin:auth_user_change", args=[user.pk])
    return client.post(url, form_of(user, **changes))


def perms_of(user: User) -> set[str]:
    return set(User.objects.get(pk=user.pk).get_all_permissions())


def test_a_manager_cannot_make_themselves_superuser(manager: User) -> None:
    response = change(logged_in(manager), manager, is_superuser=True)
    assert response.status_code == 302  # saved, the field is read-only to them
    manager.refresh_from_db()
    assert not manager.is_superuser


def test_a_manager_cannot_grant_themselves_a_permission_they_lack(manager: User) -> None:
    held = [p.pk for p in manager.user_permissions.all()]
    response = change(
        logged_in(manager),
        manager,
        user_permissions=[*held, permission("accounts.change_tenant").pk],
    )
    assert response.status_code == 200
    assert "permission accounts.change_tenant" in response.content.decode()
    assert "accounts.change_tenant" not in perms_of(manager)


def test_a_manager_cannot_join_a_group_that_carries_more(manager: User) -> None:
    operators = Group.objects.create(name="operators")
    operators.permissions.set([permission("accounts.change_tenant")])
    response = change(logged_in(manager), manager, groups=[operators.pk])
    assert response.status_code == 200
    assert "group operators" in response.content.decode()
    assert not manager.groups.exists()


def test_a_manager_grants_what_they_hold(manager: User) -> None:
    plain = account("plain")
    viewers = Group.objects.create(name="viewers")
    viewers.permissions.set([permission("accounts.view_tenant")])
    response = change(
        logged_in(manager),
        plain,
        groups=[viewers.pk],
        user_permissions=[permission("auth.view_user").pk],
    )
    assert response.status_code == 302
    assert perms_of(plain) == {"accounts.view_tenant", "auth.view_user"}


@pytest.mark.parametrize("target", ["superuser", "operator", "inactive operator"])
def test_a_manager_cannot_take_over_an_account_that_carries_more(
    manager: User, target: str
) -> None:
    if target == "superuser":
        user = User.objects.create_superuser("root", password=PASSWORD)
    else:
        user = account("op", "accounts.change_tenant", is_active=target == "operator")
    client = logged_in(manager)
    password_url = reverse("admin:auth_user_password_change", args=[user.pk])
    posted = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert client.post(password_url, posted).status_code == 403
    assert change(client, user, is_active=True, first_name="Mallory").status_code == 403
    delete_url = reverse("admin:auth_user_delete", args=[user.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    action = {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"}
    client.post(reverse("admin:auth_user_changelist"), action)
    after = User.objects.get(pk=user.pk)
    assert after.check_password(PASSWORD)
    assert (after.first_name, after.is_active) == ("", user.is_active)


def test_a_manager_may_still_reset_a_password_within_their_reach(manager: User) -> None:
    clerk = account("clerk", "accounts.view_tenant")
    url = reverse("admin:auth_user_password_change", args=[clerk.pk])
    posted = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert logged_in(manager).post(url, posted).status_code == 302
    clerk.refresh_from_db()
    assert clerk.check_password(NEW_PASSWORD)


def group_form(group: Group, perms: list[Permission]) -> dict[str, Any]:
    return {"name": group.name, "permissions": [p.pk for p in perms]}


def test_a_manager_cannot_add_to_a_group_a_permission_they_lack(manager: User) -> None:
    staff = Group.objects.create(name="staff")
    manager.groups.add(staff)
    url = reverse("admin:auth_group_change", args=[staff.pk])
    client = logged_in(manager)
    refused = client.post(url, group_form(staff, [permission("accounts.change_tenant")]))
    assert refused.status_code == 200
    assert "permission accounts.change_tenant" in refused.content.decode()
    assert not staff.permissions.exists()
    allowed = client.post(url, group_form(staff, [permission("accounts.view_tenant")]))
    assert allowed.status_code == 302
    assert [p.codename for p in staff.permissions.all()] == ["view_tenant"]


def test_a_superuser_still_grants_anything() -> None:
    root = User.objects.create_superuser("root", password=PASSWORD)
    other = account("other")
    client = logged_in(root)
    response = change(
        client,
        other,
        is_superuser=True,
        user_permissions=[permission("accounts.change_tenant").pk],
    )
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.is_superuser
    assert "accounts.change_tenant" in {
        f"{p.content_type.app_label}.{p.codename}" for p in other.user_permissions.all()
    }


def test_a_group_name_with_a_control_is_refused_and_one_stored_before_renamed() -> None:
    """A group's name is chosen as a tenant's is (tests/accounts/test_tenant_names.py)."""
    client = logged_in(User.objects.create_superuser("root", password=PASSWORD))
    added = client.post(reverse("admin:auth_group_add"), {"name": "ops\x1b[2J", "permissions": []})
    assert added.status_code == 200
    assert added.context["adminform"].form.errors["name"] == [
        "Enter a name without control characters (line breaks, tabs, escapes) or bidirectional "
        "text controls: found U+001B at position 4."
    ]
    assert not Group.objects.exists()
    old = Group.objects.create(name="old\u202eops")  # stored before
    url = reverse("admin:auth_group_change", args=[old.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"name": "old ops", "permissions": []}).status_code == 302
    old.refresh_from_db()
    assert old.name == "old ops"


def test_a_group_name_with_a_line_break_at_an_end_is_refused_its_spaces_trimmed() -> None:
    """As a tenant's: a line break or tab at an end was trimmed unseen by the form's strip."""
    client = logged_in(User.objects.create_superuser("root", password=PASSWORD))
    url = reverse("admin:auth_group_add")
    for name, where in (("ops\n", "U+000A at position 4"), ("\tops", "U+0009 at position 1")):
        added = client.post(url, {"name": name, "permissions": []})
        assert added.context["adminform"].form.errors["name"] == [
            "Enter a name without control characters (line breaks, tabs, escapes) or "
            f"bidirectional text controls: found {where}."
        ]
    blank = client.post(url, {"name": "\u3000 ", "permissions": []})
    assert blank.context["adminform"].form.errors["name"] == ["This field is required."]
    assert not Group.objects.exists()
    assert client.post(url, {"name": "\u00a0ops ", "permissions": []}).status_code == 302
    assert Group.objects.get().name == "ops"


# Each reads as "Opérateurs" once shown (tests/accounts/test_tenant_names.py has the rule's
# cases): a zero-width space, a Braille blank at the end, the accent as a combining mark.
GROUP_LOOKALIKES = ("Opérateurs\u200b", "Opérateurs\u2800", "Ope\u0301rateurs", "\uff2fpérateurs")
LOOKALIKE_GROUP = (
    "This name reads the same as group #{pk}'s: they differ only in invisible characters, "
    "spacing, how accented letters are encoded or a letter's width or style (“Ａ” or “𝐀” "
    "for “A”). Choose a name people can tell apart."
)
INVISIBLE_NAME = (
    "This name shows as nothing: it holds only invisible characters or spaces. Enter a name "
    "people can read."
)


@pytest.mark.parametrize("name", GROUP_LOOKALIKES, ids=list(map(ascii, GROUP_LOOKALIKES)))
def test_a_group_name_that_reads_as_another_groups_is_refused(name: str) -> None:
    """Two groups listed alike in the user form's choices: an admin granting "Opérateurs"
    picked either, and the one picked carried other permissions."""
    operators = Group.objects.create(name="Opérateurs")
    client = logged_in(User.objects.create_superuser("root", password=PASSWORD))
    added = client.post(reverse("admin:auth_group_add"), {"name": name, "permissions": []})
    assert added.status_code == 200
    errors = added.context["adminform"].form.errors["name"]
    assert errors == [LOOKALIKE_GROUP.format(pk=operators.pk)]
    other = Group.objects.create(name="auditors")
    url = reverse("admin:auth_group_change", args=[other.pk])
    renamed = client.post(url, {"name": name, "permissions": []})
    assert renamed.context["adminform"].form.errors["name"] == errors
    assert sorted(Group.objects.values_list("name", flat=True)) == ["Opérateurs", "auditors"]


@pytest.mark.parametrize("name", ("\u200b", "\u2060\ufeff", "\u2800"), ids=ascii)
def test_a_group_name_that_shows_as_nothing_is_refused(name: str) -> None:
    client = logged_in(User.objects.create_superuser("root", password=PASSWORD))
    added = client.post(reverse("admin:auth_group_add"), {"name": name, "permissions": []})
    assert added.context["adminform"].form.errors["name"] == [INVISIBLE_NAME]
    assert not Group.objects.exists()


def test_group_names_that_read_differently_are_accepted_lookalikes_stored_before_kept() -> None:
    Group.objects.create(name="Opérateurs")
    twin = Group.objects.create(name="Opérateurs\u200b")  # stored before the rule
    client = logged_in(User.objects.create_superuser("root", password=PASSWORD))
    url = reverse("admin:auth_group_add")
    for name in ("OPÉRATEURS", "Operateurs", "Opérateurs 2"):
        assert client.post(url, {"name": name, "permissions": []}).status_code == 302
    change = reverse("admin:auth_group_change", args=[twin.pk])
    viewing = [permission("auth.view_group").pk]
    kept = client.post(change, {"name": twin.name, "permissions": viewing})
    assert kept.status_code == 302
    assert [p.codename for p in twin.permissions.all()] == ["view_group"]
    assert client.post(change, {"name": "Opérateurs (old)", "permissions": []}).status_code == 302
    twin.refresh_from_db()
    assert twin.name == "Opérateurs (old)"


def test_a_manager_cannot_change_or_delete_a_group_that_carries_more(manager: User) -> None:
    """As with an account: a group carrying a permission the manager lacks is theirs to view,
    not to strip (its members lost ``change_tenant`` to someone who never held it) or delete."""
    manager.user_permissions.add(permission("auth.delete_group"))
    operators = Group.objects.create(name="operators")
    operators.permissions.set([permission("accounts.change_tenant")])
    client = logged_in(manager)
    url = reverse("admin:auth_group_change", args=[operators.pk])
    assert client.get(url).status_code == 200  # read only
    assert client.post(url, group_form(operators, [])).status_code == 403
    delete = reverse("admin:auth_group_delete", args=[operators.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [operators.pk], "post": "yes"}
    client.post(reverse("admin:auth_group_changelist"), bulk)
    assert [p.codename for p in Group.objects.get(pk=operators.pk).permissions.all()] == [
        "change_tenant"
    ]
    within = Group.objects.create(name="viewers")
    within.permissions.set([permission("accounts.view_tenant")])
    deleted = client.post(reverse("admin:auth_group_delete", args=[within.pk]), {"post": "yes"})
    assert deleted.status_code == 302
    assert not Group.objects.filter(pk=within.pk).exists()


MIXED_USERNAME = (
    "Enter a username whose letters come from one alphabet: this one mixes Latin and Cyrillic "
    "letters, which look alike (a Cyrillic “а” reads as a Latin “a”)."
)
LOOKALIKE_USER = (
    "This username reads the same as user #{pk}'s: they differ only in case, invisible "
    "characters, how a letter is encoded or letters that look alike (“rn” and “m”, “1” and “l”, "
    "“0” and “O”, a dotless “ı” and “i”). Choose a username people can tell apart."
)


def username_errors(response: Any) -> list[str]:
    assert response.status_code == 200  # the form again: nothing saved
    return list(response.context["adminform"].form.errors["username"])


def test_a_manager_cannot_rename_an_account_to_read_as_the_commands(manager: User) -> None:
    """``facia-system`` with a Cyrillic "с" was saved (302): every change the account made
    then read as a management command's in the history. Another operator's name in another
    case ("Manager" beside "manager") was saved too: their changes read alike."""
    call_command("create_tenant", "Acme", stdout=StringIO())  # facia-system exists
    plain = account("plain")
    client = logged_in(manager)
    refused = {
        "fa\u0441ia-system": MIXED_USERNAME,
        "Manager": LOOKALIKE_USER.format(pk=manager.pk),
        "FACIA-SYSTEM": RESERVED_USERNAME,
    }
    for name, error in refused.items():
        assert username_errors(change(client, plain, username=name)) == [error], ascii(name)
    assert User.objects.get(pk=plain.pk).username == "plain"


def test_a_new_account_cannot_take_a_lookalike_name() -> None:
    client = logged_in(User.objects.create_superuser("root", password=PASSWORD))
    passwords = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    url = reverse("admin:auth_user_add")
    added = client.post(url, {"username": "r\u043eot-2", **passwords})  # a Cyrillic "о"
    assert username_errors(added) == [MIXED_USERNAME]
    assert list(User.objects.values_list("username", flat=True)) == ["root"]


def test_usernames_that_read_differently_are_accepted_lookalikes_stored_before_kept(
    manager: User,
) -> None:
    """One alphabet is any alphabet (an all-Cyrillic name is fine); a name stored before the
    rule keeps its page and saves unchanged, and can be renamed."""
    twin = account("m\u0430nager")  # stored before, with a Cyrillic "а"
    client = logged_in(manager)
    assert change(client, twin, first_name="Twin").status_code == 302
    twin.refresh_from_db()
    for name in ("\u043f\u0435\u0442\u0440\u043e\u0432", "manager-2", "twin"):
        assert change(client, twin, username=name).status_code == 302, name
        twin.refresh_from_db()
    assert twin.username == "twin" and twin.first_name == "Twin"


def test_a_username_shaped_like_anothers_is_refused(manager: User) -> None:
    """UTS #39's skeletons (``ml.text.skeleton``): before, a name had to be another's in other
    case, encoding or alphabet to be refused, and "rnanager" beside "manager", "admın" (a
    dotless "ı") beside "admin" or "0" beside "o" were saved."""
    others = {name: account(name) for name in ("admin", "adm1n", "o", "mallory")}
    plain = account("plain")
    client = logged_in(manager)
    refused = {
        "rnanager": manager,
        "adm\u0131n": others["admin"],
        "admIn": others["admin"],  # "admin" in another case, "adm1n" in shape
        "admln": others["adm1n"],
        "0": others["o"],
        "rnallory": others["mallory"],
    }
    for name, other in refused.items():
        error = LOOKALIKE_USER.format(pk=other.pk)
        assert username_errors(change(client, plain, username=name)) == [error], ascii(name)
    assert User.objects.get(pk=plain.pk).username == "plain"


def test_usernames_one_letter_apart_that_people_tell_apart_are_accepted(manager: User) -> None:
    account("carl")
    account("anna")
    plain = account("plain")
    client = logged_in(manager)
    for name in ("cari", "anne", "rnanagers"):
        assert change(client, plain, username=name).status_code == 302, name
        plain.refresh_from_db()
    assert plain.username == "rnanagers"


def test_an_account_renamed_to_its_own_name_in_another_shape_is_saved(manager: User) -> None:
    """The rule reads a name apart from the other accounts', not from the one renamed: "carl"
    to "Carl" is not refused as reading the same as its own user #."""
    carl = account("carl")
    anna = account("anna")
    client = logged_in(manager)
    assert change(client, carl, username="Carl").status_code == 302
    carl.refresh_from_db()
    refused = username_errors(change(client, carl, username="Anna"))  # still another's
    assert refused == [LOOKALIKE_USER.format(pk=anna.pk)]
    assert User.objects.get(pk=carl.pk).username == "Carl"
