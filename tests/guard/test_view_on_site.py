"""The admin's "view on site" shortcut, /admin/r/<content_type_id>/<object_id>/: no model has a
page on the site (none defines get_absolute_url), so it only ever answers 404; Django's
contenttypes.views.shortcut looked any row up for any staff user, without a permission, and a
malformed id of a model with a UUID key ("x") raised ValidationError: a 500."""

import uuid
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django_tasks_db.models import DBTaskResult

from accounts.models import Tenant
from capture.models import CaptureSession

pytestmark = pytest.mark.django_db

# (model, a malformed id)
MODELS = [
    (CaptureSession, "x"),
    (DBTaskResult, "x"),
    (Tenant, "x"),
    (Tenant, "99999999999999999999999"),  # past 64 bits
    (User, "1.5"),
]


def staff(*codenames: str) -> Client:
    """A logged-in staff user holding only ``codenames``."""
    user = User.objects.create_user(
        f"op-{uuid.uuid4().hex[:8]}", password="Passw0rd-Long-Enough", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def shortcut(model: type, object_id: object) -> str:
    return f"/admin/r/{ContentType.objects.get_for_model(model).pk}/{object_id}/"


@pytest.mark.parametrize(("model", "bad_id"), MODELS, ids=[f"{m.__name__}-{i}" for m, i in MODELS])
@pytest.mark.parametrize("codenames", [(), ("view_capturesession", "view_tenant", "view_user")])
def test_a_malformed_id_is_a_404(model: type, bad_id: str, codenames: tuple[str, ...]) -> None:
    assert staff(*codenames).get(shortcut(model, bad_id)).status_code == 404


def test_a_staff_user_without_permission_gets_a_404_for_any_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a model with a page on the site, the shortcut redirected any staff user there,
    telling rows that exist (302) from those that do not (404): now only a user who may view
    the model's rows (the view or change permission, as the admin's list) is told."""
    monkeypatch.setattr(Tenant, "get_absolute_url", lambda self: f"/t/{self.pk}", raising=False)
    tenant = Tenant.objects.create(name="acme")
    client = staff()
    for url in (
        shortcut(Tenant, tenant.pk),
        shortcut(Tenant, tenant.pk + 1),
        shortcut(CaptureSession, uuid.uuid4()),
        "/admin/r/99999/1/",  # no such content type
    ):
        assert client.get(url).status_code == 404, url


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
WRITTEN: dict[
    str, Callable[[str], str]
] = {  # a content type id as Django's own route of the address, int(), takes it
    "plus": "+{}".format,
    "space": " {}".format,
    "underscore": lambda pk: f"{pk[0]}_{pk[1:]}" if len(pk) > 1 else f"0_{pk}",
    "arabic-indic": lambda pk: pk.translate(ARABIC_INDIC),
}


@pytest.mark.parametrize("form", WRITTEN)
def test_a_content_type_id_written_otherwise_is_guarded_too(
    monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """An <int:> guard matched ASCII digits only, and Django's own route took the rest: "+17",
    " 17", "1_7" or Arabic-Indic digits reached the unguarded view (a 500 for a capture
    session's "x", a 302 telling a staff user without permission that a tenant exists)."""
    monkeypatch.setattr(Tenant, "get_absolute_url", lambda self: f"/t/{self.pk}", raising=False)
    tenant = Tenant.objects.create(name="acme")
    client = staff()
    for model, object_id in ((CaptureSession, "x"), (Tenant, tenant.pk)):
        content_type = WRITTEN[form](str(ContentType.objects.get_for_model(model).pk))
        url = f"/admin/r/{content_type}/{object_id}/"
        assert client.get(url).status_code == 404, url


def test_a_user_who_may_view_the_model_is_redirected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Tenant, "get_absolute_url", lambda self: f"/t/{self.pk}", raising=False)
    tenant = Tenant.objects.create(name="acme")
    for codename in ("view_tenant", "change_tenant"):
        client = staff(codename)
        response = client.get(shortcut(Tenant, tenant.pk))
        assert response.status_code == 302 and response["Location"].endswith(f"/t/{tenant.pk}")
        assert client.get(shortcut(Tenant, tenant.pk + 1)).status_code == 404


def test_no_model_has_a_page_on_the_site() -> None:
    """So the shortcut leads nowhere, even for a user who may view the rows."""
    tenant = Tenant.objects.create(name="acme")
    assert staff("view_tenant").get(shortcut(Tenant, tenant.pk)).status_code == 404
