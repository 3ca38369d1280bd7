"""The admin's history: each change to a tenant's access or verdicts leaves one LogEntry with
who made it and what changed; management commands are attributed to the system user."""

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from accounts.audit import SYSTEM_USER
from accounts.models import HashId, Tenant
from calibration.jobs import run_local_jobs
from calibration.models import Calibration
from tests.accounts.test_admin import INLINE_MANAGEMENT, run_action
from tests.calibration.test_calibrate import LIVE, SPOOF, linked, make_zip
from tests.calibration.test_evaluate import make_evaluation

pytestmark = pytest.mark.django_db


def entries(tenant: Tenant) -> list[tuple[str, str]]:
    own = LogEntry.objects.filter(object_id=str(tenant.pk), content_type__model="tenant")
    rows = own.order_by("pk")
    return [(e.user.get_username(), e.get_change_message()) for e in rows]


def test_issue_reset_and_revoke_are_in_the_history(admin_client: Any, admin_user: Any) -> None:
    tenant = Tenant.objects.create(name="Audited", request_limit=5, requests_used=5)
    run_action(admin_client, "tenant", "issue_hash_id", tenant.pk)
    prefix = HashId.objects.get(tenant=tenant).prefix
    run_action(admin_client, "tenant", "reset_quota", tenant.pk)
    run_action(admin_client, "hashid", "revoke", HashId.objects.get(tenant=tenant).pk)
    assert entries(tenant) == [
        ("admin", f"Issued hash_id {prefix}…"),
        ("admin", "Reset quota (5 used before)."),
        ("admin", f"Revoked hash_id {prefix}…"),
    ]


def test_revoke_from_the_tenant_page(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="PageRevoke")
    issued = HashId.issue(tenant)
    page = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/change/").content.decode()
    url = f"/admin/accounts/tenant/{tenant.pk}/revoke/{issued.record.pk}/"
    assert f'formaction="{url}"' in page
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url, follow=True)
    assert response.redirect_chain[-1][0].endswith(f"/admin/accounts/tenant/{tenant.pk}/change/")
    issued.record.refresh_from_db()
    assert issued.record.is_revoked
    assert entries(tenant) == [("admin", f"Revoked hash_id {issued.record.prefix}…")]


@pytest.mark.parametrize("how", ["action", "delete page"])
def test_deleting_a_hash_id_is_in_its_tenants_history(admin_client: Any, how: str) -> None:
    """Deleting a hash_id ends its access as revoking does: the tenant's History says so too,
    not only the hash_id's own entry (which goes with the row's page)."""
    tenant = Tenant.objects.create(name="Deleted")
    record = HashId.issue(tenant).record
    if how == "action":
        data = {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}
        response = admin_client.post("/admin/accounts/hashid/", data)
    else:
        response = admin_client.post(f"/admin/accounts/hashid/{record.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not HashId.objects.exists()
    assert entries(tenant) == [("admin", f"Deleted hash_id {record.prefix}…")]
    history = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/history/").content.decode()
    assert f"Deleted hash_id {record.prefix}…" in history


def test_a_threshold_profile_and_crop_policy_change_says_old_and_new(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Tuned")
    data = {
        "name": "Tuned",
        "is_active": "on",
        "threshold": "0.7",
        "profile": "thorough",
        "crop_policy": "refuse",
        "challenge": "none",
        "challenge_band": "0.75",
    }
    admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/change/", {**data, **INLINE_MANAGEMENT})
    ((user, message),) = entries(tenant)
    assert user == "admin"
    assert message == (
        "Changed threshold 0.5 → 0.7; profile fast → thorough; crop_policy judge → refuse."
    )


def test_commands_are_attributed_to_the_system_user() -> None:
    call_command("create_tenant", "Scripted", "--limit", "3")
    tenant = Tenant.objects.get(name="Scripted")
    call_command("issue_hash_id", "Scripted")
    call_command("reset_quotas", "--tenant", "Scripted")
    users = {user for user, _ in entries(tenant)}
    messages = [message for _, message in entries(tenant)]
    assert users == {SYSTEM_USER}
    assert messages[0] == "Added. (manage.py create_tenant)"
    assert messages[1].startswith("Issued hash_id ") and "create_tenant" in messages[1]
    assert messages[2].endswith("(manage.py issue_hash_id)")
    assert messages[3] == "Reset quota (0 used before). (manage.py reset_quotas)"
    system = LogEntry.objects.filter(object_id=str(tenant.pk)).earliest("pk").user
    assert not system.is_active and not system.has_usable_password()


@pytest.mark.slow  # 13 s at load 8: calibrates twice
@pytest.mark.usefixtures("warm_engine")
@pytest.mark.parametrize("how", ["action", "delete page"])
def test_deleting_a_user_never_takes_their_history_with_them(admin_client: Any, how: str) -> None:
    """Django deletes a user's history entries with the user (LogEntry.user cascades): deleting
    facia-system, an inactive account with no password, or an operator would erase every
    change they made. A user with history is kept (deactivate them instead); one without is
    deleted."""
    from django.contrib.auth.models import User

    tenant = Tenant.objects.create(name="Remembered")
    call_command("issue_hash_id", "Remembered", stdout=StringIO())
    system = User.objects.get(username=SYSTEM_USER)
    idle = User.objects.create_user("idle")
    before = entries(tenant)
    assert [user for user, _ in before] == [SYSTEM_USER]
    for user in (system, idle):
        if how == "action":
            data = {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"}
            answer = admin_client.post("/admin/auth/user/", data)
        else:
            answer = admin_client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
        assert answer.status_code in (200, 302)
    assert User.objects.filter(pk=system.pk).exists() and entries(tenant) == before
    assert not User.objects.filter(pk=idle.pk).exists()
    page = admin_client.get(f"/admin/auth/user/{system.pk}/delete/").content.decode()
    assert "history" in page and "deactivate" in page


def test_calibrate_command_upload_and_revert_are_in_the_history(
    admin_client: Any, tmp_path: Path
) -> None:
    tenant = Tenant.objects.create(name="Calibrated", threshold=0.7)
    call_command("calibrate", "Calibrated", str(linked(tmp_path, LIVE, SPOOF)), stdout=StringIO())
    stored = Calibration.objects.get(tenant=tenant)
    upload = SimpleUploadedFile("c.zip", make_zip(LIVE, SPOOF), content_type="application/zip")
    admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/calibrate/", {"archive": upload})
    assert run_local_jobs() == 1  # the task worker's job, with the uploader in the history
    second = Calibration.objects.exclude(pk=stored.pk).get(tenant=tenant)
    run_action(admin_client, "tenant", "revert_to_uncalibrated", tenant.pk)
    (command, uploaded, reverted) = entries(tenant)
    assert command == (
        SYSTEM_USER,
        f"Calibrated: {stored}, threshold 0.7000 → {stored.threshold:.4f}. (manage.py calibrate)",
    )
    assert uploaded == (
        "admin",
        f"Calibrated: {second}, threshold {stored.threshold:.4f} → {second.threshold:.4f}.",
    )
    assert reverted == (
        "admin",
        f"Reverted to uncalibrated: threshold {second.threshold:.4f} → 0.7000.",
    )


def test_threshold_from_a_target_apcer_is_in_the_history(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Targeted")
    evaluation = make_evaluation("fast")
    data = {"name": "Targeted", "is_active": "on", "threshold": "0.5", "profile": "fast"}
    data |= {"crop_policy": "judge", "challenge": "none", "target_apcer": "25"}
    data |= {"challenge_band": "0.75"}
    admin_client.post(f"/admin/accounts/tenant/{tenant.pk}/change/", {**data, **INLINE_MANAGEMENT})
    tenant.refresh_from_db()
    ((user, message),) = entries(tenant)
    assert user == "admin"
    assert message == (
        f"Changed threshold 0.5 → {tenant.threshold:.4f} from target APCER 25.0% on "
        f"evaluation #{evaluation.pk}."
    )


def test_nobody_can_log_in_as_the_system_user(client: Any, admin_user: Any) -> None:
    """Whoever may edit accounts must not activate facia-system, give it a password and log
    in as it (it carries no permission, so may_act_as would allow it), nor, before any command
    ran, add an account by that name: their changes would read as a management command's in
    every history. The account is read only in the admin, and its name refused to a new one."""
    from django.contrib.auth.models import Permission, User

    manager = User.objects.create_user("manager", is_staff=True)
    manager.user_permissions.set(
        Permission.objects.filter(codename__in=["view_user", "change_user", "add_user"])
    )
    password = {"password1": "N3w-Passw0rd!x", "password2": "N3w-Passw0rd!x"}
    for editor in (manager, admin_user):
        client.force_login(editor)
        added = client.post("/admin/auth/user/add/", {"username": SYSTEM_USER, **password})
        assert added.status_code == 200
        assert "reserved" in added.content.decode()
        assert not User.objects.filter(username=SYSTEM_USER).exists()
    call_command("issue_hash_id", Tenant.objects.create(name="Acme").name, stdout=StringIO())
    system = User.objects.get(username=SYSTEM_USER)
    for editor in (manager, admin_user):
        client.force_login(editor)
        url = f"/admin/auth/user/{system.pk}/"
        assert client.get(f"{url}change/").status_code == 200  # read only
        changed = {"username": SYSTEM_USER, "is_active": "on", "is_staff": "on"}
        assert client.post(f"{url}change/", changed).status_code == 403
        assert client.post(f"{url}password/", password).status_code == 403
        renamed = User.objects.create_user(f"other-{editor.pk}")
        form = {"username": SYSTEM_USER.upper(), "date_joined_0": "2026-01-01"}
        taken = client.post(f"/admin/auth/user/{renamed.pk}/change/", form)
        assert taken.status_code == 200 and "reserved" in taken.content.decode()
    system.refresh_from_db()
    assert not system.is_active and not system.has_usable_password()


def test_an_old_databases_system_user_cannot_log_in(client: Any) -> None:
    """A database from before the admin made facia-system read only may hold it active, staff
    and with a password: it is still refused, and a session already open as it ends."""
    from django.contrib.auth.models import User

    password = "N3w-Passw0rd!x"
    system = User.objects.create_user(SYSTEM_USER, password=password, is_staff=True)
    system.is_superuser = True
    system.save()
    assert not client.login(username=SYSTEM_USER, password=password)
    answer = client.post(
        "/admin/login/?next=/admin/", {"username": SYSTEM_USER, "password": password}
    )
    assert answer.status_code == 200 and "_auth_user_id" not in client.session
    client.force_login(system)  # a session opened before the upgrade
    again = client.get("/admin/")
    assert again.status_code == 302 and again["Location"].startswith("/admin/login/")
