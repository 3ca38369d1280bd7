"""A change permission lets its holder view, wherever the console asks (Django's rule for a
list, ``ModelAdmin.has_view_permission``): the tenant page's calibration blocks, the history's
calibration entries and the calibration upload held a user with ``change_calibration`` and
``change_livenesscheck`` (no view permission) to less than the lists they open."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Permission, User
from django.db.models import Q
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts import audit
from calibration.uploads import may_upload
from console.history import CALIBRATION_HIDDEN, shown_to
from tests.calibration.test_shadow import in_shadow, tenant_page

CALIBRATED = (
    "Calibrated: calibration #7, threshold 0.5 → 0.6"
    " (3 checks in shadow: 1 live → spoof, 2 spoof → live)"
)


def change_only(*accounts: str) -> User:
    """Staff with ``accounts`` permissions, and the change (not view) permission of the
    calibrations, evaluations and checks."""
    user = User.objects.create_user(f"changer-{time.monotonic_ns()}", is_staff=True)
    changers = (
        Q(content_type__app_label="calibration", codename="change_calibration")
        | Q(content_type__app_label="calibration", codename="change_evaluation")
        | Q(content_type__app_label="liveness", codename="change_livenesscheck")
    )
    user.user_permissions.set(
        Permission.objects.filter(
            Q(content_type__app_label="accounts", codename__in=accounts) | changers
        )
    )
    return User.objects.get(pk=user.pk)  # no cached permissions


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_tenant_page_shows_the_shadow_to_whoever_may_change_calibrations(
    make_tenant: Callable[..., Any],
) -> None:
    tenant, _ = make_tenant("changed", threshold=0.5)
    in_shadow(tenant, threshold=0.61)
    client = signed_in(change_only("view_tenant", "change_tenant"))
    assert client.get(reverse("admin:calibration_calibration_changelist")).status_code == 200
    page = tenant_page(client, tenant)
    assert "shadow-live-to-spoof" in page  # the flips, counted from the checks
    assert 'id="shadow-promote"' in page


def test_the_history_shows_calibrations_to_whoever_may_change_them(
    make_tenant: Callable[..., Any],
) -> None:
    tenant, _ = make_tenant("history")
    user = change_only("view_tenant")
    assert shown_to(user, CALIBRATED) == CALIBRATED
    audit.record(tenant, CALIBRATED)
    url = reverse("admin:accounts_tenant_history", args=[tenant.pk])
    page = signed_in(user).get(url).content.decode()
    assert "1 live → spoof" in page and CALIBRATION_HIDDEN not in page


def test_whoever_may_change_calibrations_may_upload(db: None) -> None:
    request = RequestFactory().post("/")
    request.user = change_only("change_tenant")
    assert may_upload(request)
    request.user = change_only()  # the tenant's change permission is still needed
    assert not may_upload(request)
