"""An admin page opened for an id that is no row (a change, delete or history URL) redirects
to the index with a message saying so. The message waits in the session's database row
(MESSAGE_STORAGE is the session's) until a page shows it: a hash_id pasted as that id is
named there by its length only, as in the logs, for every model admin the site registers."""

import json
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.models import HashId, Tenant

pytestmark = pytest.mark.django_db

PAGES = ("change", "delete", "history")


def session_rows() -> str:
    """Every session row as stored and as decoded, as one text to search."""
    rows = Session.objects.all()
    return json.dumps([[row.session_data, row.get_decoded()] for row in rows], default=str)


def admin_urls() -> list[str]:
    """Each registered model admin's pages of one row, by URL prefix (``/admin/app/model/``)."""
    return [
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model in sorted(admin.site._registry, key=lambda m: m._meta.label_lower)
    ]


@pytest.mark.parametrize("page", PAGES)
def test_a_hash_id_as_a_rows_id_is_never_stored_in_the_session(
    admin_client: Client, tenant: tuple[Tenant, str], page: str
) -> None:
    """Each admin's page, as its links quote the id (``quote``: "_" is "_5F"); a page no
    admin may open (deleting a calibration) is refused first, and stores nothing either."""
    _, secret = tenant
    redirected = []
    for url in admin_urls():
        response = admin_client.get(f"{url}{quote(secret)}/{page}/")
        stored = session_rows()
        assert secret not in stored and secret.lower() not in stored, url
        if response.status_code == 403:
            continue
        assert (response.status_code, response["Location"]) == (302, "/admin/"), url
        assert "Perhaps it was deleted?" in stored, url  # the message is there, waiting
        shown = admin_client.get("/admin/").content.decode()
        assert f"with ID “&lt;redacted:{len(secret)}&gt;” doesn’t exist" in shown, url
        assert secret not in shown, url
        redirected.append(url)
    assert {"/admin/accounts/hashid/", "/admin/accounts/tenant/", "/admin/auth/user/"} <= set(
        redirected
    )
    assert len(redirected) >= len(admin_urls()) - 1


def test_an_id_split_by_unquoting_is_named_by_its_length(admin_client: Client) -> None:
    """Pasted as it is, a hash_id holding "_2F" is unquoted by Django into two runs, each too
    short to read as a token: the id as sent is a token, so neither half is shown."""
    pasted = "Ab3dEf6hIjKl_2FmNoPqRsTuVw"
    response = admin_client.get(f"/admin/accounts/hashid/{pasted}/change/", follow=True)
    shown = response.content.decode()
    assert "Hash_id with ID “&lt;redacted:24&gt;” doesn’t exist" in shown
    assert "Ab3dEf6hIjKl" not in shown and "mNoPqRsTuVw" not in shown


def test_an_ordinary_missing_id_is_still_named(admin_client: Client, tenant: Any) -> None:
    """A number, or a word of one case, is no secret: the admin reads which id was missing."""
    missing = max(HashId.objects.values_list("pk", flat=True)) + 1
    for key in (str(missing), "not-a-number"):
        response = admin_client.get(f"/admin/accounts/hashid/{key}/change/", follow=True)
        assert f"Hash_id with ID “{key}” doesn’t exist" in response.content.decode()
