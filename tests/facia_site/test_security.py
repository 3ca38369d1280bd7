"""Production settings: `check --deploy` passes with the documented environment, the admin
needs a login, CSRF stays on, the admin URL is configurable, HTTPS is enforced behind a proxy."""

import json
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import REPO

PRODUCTION = {
    "DJANGO_SECURE": "1",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "liveness.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://liveness.example.com",
}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SECURE"}}
    return subprocess.run(
        args, cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_the_production_settings() -> None:
    done = run(
        PRODUCTION, sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_fails_without_them() -> None:
    env = {**PRODUCTION, "DJANGO_SECURE": "0", "DEBUG": "1"}
    done = run(env, sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    assert "security.W004" in done.stderr  # HSTS
    assert "security.W018" in done.stderr  # DEBUG


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
c = Client(HTTP_HOST="liveness.example.com")
def answer(path, **headers):
    r = c.get(path, **headers)
    hsts = r.headers.get("Strict-Transport-Security", "")
    return [r.status_code, r.headers.get("Location", ""), hsts]
print(json.dumps({
    "plain": answer("/api/docs/"),
    "status_plain": answer("/status_check"),
    "metrics_plain": answer("/metrics", REMOTE_ADDR="127.0.0.1"),
    "tls": answer("/ops-7f3a9/login/", HTTP_X_FORWARDED_PROTO="https"),
    "old_admin": answer("/admin/login/", HTTP_X_FORWARDED_PROTO="https"),
}))
"""


def test_https_redirect_hsts_and_admin_url_from_the_environment() -> None:
    env = {
        **PRODUCTION,
        "ADMIN_URL": "/ops-7f3a9/",
        "DJANGO_SETTINGS_MODULE": "facia_site.settings",
    }
    done = run(env, sys.executable, "-c", PROBE)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain"][:2] == [301, "https://liveness.example.com/api/docs/"]
    assert seen["status_plain"][0] in (200, 503)  # health checks stay on plain HTTP
    # observability.md: Prometheus scrapes each instance directly, past the TLS proxy; redirected,
    # it would go to https on the instance itself, which serves no TLS.
    assert seen["metrics_plain"][:2] == [200, ""]
    status, _, hsts = seen["tls"]
    assert status == 200
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert seen["old_admin"][0] == 404


def test_admin_needs_a_login(db: None, client: Any) -> None:
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.get("/admin/accounts/tenant/").status_code == 302


def test_admin_login_without_csrf_token_is_refused(db: None, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post(
        "/admin/login/", {"username": "root", "password": "a-long-passphrase"}
    )
    assert response.status_code == 403
    # With the token from the login page the same credentials work.
    page = csrf_client.get("/admin/login/")
    token = page.cookies["csrftoken"].value
    response = csrf_client.post(
        "/admin/login/",
        {"username": "root", "password": "a-long-passphrase", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302


def test_the_database_keeps_no_usable_session_key(db: None, django_user_model: Any) -> None:
    """The session cookie is a bearer token for the admin: the database keeps a digest of it,
    as it does of hash_ids, so a copy of the database (a backup) logs nobody in."""
    from django.contrib.sessions.models import Session
    from django.db import connection

    django_user_model.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    client = Client()
    login = {"username": "root", "password": "a-long-passphrase"}
    assert client.post("/admin/login/", login).status_code == 302
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    (row,) = Session.objects.all()
    assert row.get_decoded()["_auth_user_id"]  # the search sees the session
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM django_session")
        assert key not in repr(cursor.fetchall())
    assert client.get("/admin/").status_code == 200  # the cookie still logs in
    stolen = Client()
    stolen.cookies[settings.SESSION_COOKIE_NAME] = row.session_key
    assert stolen.get("/admin/").status_code == 302  # the stored value does not
    assert client.post("/admin/logout/").status_code == 200
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "https:evil.example"]
)
def test_a_login_never_redirects_off_site(db: None, django_user_model: Any, target: str) -> None:
    """An unsafe ``next`` is refused: the login leads to the console's index, on this host
    (Django's fallback, /accounts/profile/, is no page of this service: a JSON 404)."""
    django_user_model.objects.create_superuser("root", "root@example.com", "a-long-passphrase")
    login = {"username": "root", "password": "a-long-passphrase", "next": target}
    response = Client().post(f"/admin/login/?next={target}", login)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
