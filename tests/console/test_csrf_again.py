"""The link of the page a refused CSRF check answers ("Open the page again") opens a page: for
the tenant's POST-only buttons (reset quota, issue, revoke, promote or discard the shadow
candidate) their own address answered an empty 405 (the real admin through Django's test
client, the CSRF check on as gunicorn runs it)."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from accounts.models import HashId


def operator() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("csrf-admin", password="x"))
    return client


def again(page: Any) -> str:
    assert page.status_code == 403
    found = re.search(r'id="csrf-again" class="button" href="([^"]*)"', page.content.decode())
    assert found is not None
    return found[1].replace("&amp;", "&")


@pytest.mark.parametrize(
    "button",
    ["accounts_tenant_reset_quota", "accounts_tenant_issue", "accounts_tenant_shadow", "revoke"],
)
def test_open_the_page_again_opens_a_page_after_a_post_only_button(
    make_tenant: Callable[..., Any], button: str
) -> None:
    tenant, _ = make_tenant("Refused Co")
    if button == "revoke":
        key = HashId.objects.get(tenant=tenant)
        address = reverse("admin:accounts_tenant_revoke", args=[tenant.pk, key.pk])
    else:
        address = reverse(f"admin:{button}", args=[tenant.pk])
    client = operator()
    link = again(client.post(address))  # no CSRF token: refused
    assert link == reverse("admin:accounts_tenant_change", args=[tenant.pk])
    assert client.get(link).status_code == 200
    # The page the button was on, when the browser says so (same origin only).
    calibrate = reverse("admin:accounts_tenant_calibrate", args=[tenant.pk])
    from_page = client.post(address, HTTP_REFERER=f"http://testserver{calibrate}?tab=1")
    assert again(from_page) == f"{calibrate}?tab=1"
    for elsewhere in (
        "https://evil.example/admin/",
        "http://testserver//evil.example/x",
        "javascript:alert(1)",
    ):
        assert again(client.post(address, HTTP_REFERER=elsewhere)) == link


def test_a_form_that_answers_get_is_opened_again(make_tenant: Callable[..., Any]) -> None:
    tenant, _ = make_tenant("Form Co")
    change = reverse("admin:accounts_tenant_change", args=[tenant.pk])
    assert again(operator().post(change, {"name": "x"})) == change
