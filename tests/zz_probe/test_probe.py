import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse, URLPattern
from tests.guard.test_admin_permissions import world, World, custom_views, url_of, registered, snapshot  # noqa

pytestmark = pytest.mark.django_db

def test_walk(world):
    nobody = Client(); nobody.force_login(User.objects.create_user("nobody", is_staff=True))
    plain = Client(); plain.force_login(User.objects.create_user("plain"))
    anon = Client()
    urls = []
    for model, ma in registered():
        app, name = model._meta.label_lower.split(".")
        pk = world.rows[model._meta.label_lower].pk
        urls += [reverse(f"admin:{app}_{name}_changelist"), reverse(f"admin:{app}_{name}_add"),
                 reverse(f"admin:{app}_{name}_change", args=[pk]), reverse(f"admin:{app}_{name}_delete", args=[pk]),
                 reverse(f"admin:{app}_{name}_history", args=[pk])]
    urls += [url_of(n, world) for n in custom_views()]
    before = snapshot()
    for u in urls:
        got = [c.get(u).status_code for c in (anon, plain, nobody)]
        posted = [c.post(u, {"post": "yes", "shadow": "promote", "password1": "Xx-1234567!", "password2": "Xx-1234567!", "action": "delete_selected", "_selected_action": "1"}).status_code for c in (anon, plain, nobody)]
        if got[2] not in (403,) or posted[2] not in (403,) or got[:2] != [302, 302] or posted[:2] != [302, 302]:
            print(u, got, posted)
    assert snapshot() == before
