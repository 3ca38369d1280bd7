"""An admin login ends after ADMIN_IDLE_TIMEOUT_S without a request, and each request moves
that on (the real admin through Django's test client), but a passive one: the calibrate page's
poll, which its script sends, not its user. Time passes by moving the session's
expiry back: the server reads no other clock to decide it. However active, a login ends
ADMIN_LOGIN_MAX_S after its sign-in (time passes by moving the sign-in back), and each
sign-in deletes the rows of expired sessions."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db.models import F
from django.test.client import Client
from django.utils import timezone

from accounts.models import Tenant
from guard.sessions import SIGNED_IN_AT, SessionStore

PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client, django_user_model: Any) -> Client:
    """A client signed in through the admin's login form."""
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert "_auth_user_id" in client.session
    return client


def idle(seconds: int) -> None:
    """As if ``seconds`` passed since the last request."""
    assert Session.objects.update(expire_date=F("expire_date") - timedelta(seconds=seconds)) == 1


def index(client: Client) -> Any:
    return client.get("/admin/")


def test_an_admin_idle_past_the_timeout_is_signed_out(operator: Client, settings: Any) -> None:
    assert settings.ADMIN_IDLE_TIMEOUT_S == 900  # PCI DSS 8.2.8's 15 minutes
    assert index(operator).status_code == 200
    idle(settings.ADMIN_IDLE_TIMEOUT_S + 1)
    response = index(operator)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_an_active_admin_stays_signed_in(operator: Client, settings: Any) -> None:
    """Three pauses, each a minute short of the timeout: more than the timeout in all."""
    for _ in range(3):
        idle(settings.ADMIN_IDLE_TIMEOUT_S - 60)
        assert index(operator).status_code == 200


def test_an_admin_whose_page_only_polls_is_signed_out_as_if_idle(
    operator: Client, settings: Any
) -> None:
    """The calibrate page reloaded itself every 3 s while a job ran: each reload moved the
    expiry on, so an operator who walked away from it stayed signed in until the login's
    absolute limit (12 h). Its poll is passive: the session's expiry and cookie stay put."""
    tenant = Tenant.objects.create(name="Polled")
    poll = f"/admin/accounts/tenant/{tenant.pk}/calibrate/jobs/"
    idle(settings.ADMIN_IDLE_TIMEOUT_S - 60)  # as the active admin's pauses
    expiry = Session.objects.get().expire_date
    answer = operator.get(poll)
    assert answer.status_code == 200 and answer.json()["jobs"] == []  # still signed in
    assert "sessionid" not in answer.cookies and Session.objects.get().expire_date == expiry
    idle(settings.ADMIN_IDLE_TIMEOUT_S - 60)
    answer = operator.get(poll)
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
    assert index(operator).status_code == 302


def test_the_calibrate_page_itself_still_counts_as_activity(
    operator: Client, settings: Any
) -> None:
    tenant = Tenant.objects.create(name="Opened")
    for _ in range(3):
        idle(settings.ADMIN_IDLE_TIMEOUT_S - 60)
        assert operator.get(f"/admin/accounts/tenant/{tenant.pk}/calibrate/").status_code == 200


def read(key: str) -> SessionStore:
    session = SessionStore(key)
    assert session.get(SIGNED_IN_AT) and session.modified  # read and found: saved
    return session


def test_a_passive_request_still_saves_what_it_changes(operator: Client) -> None:
    """Passive only leaves the expiry: a session a request read and changed (data set, a
    new key) is saved; one it only read is not."""
    key = operator.cookies["sessionid"].value
    only_read = read(key)
    only_read.leave_expiry()
    assert not only_read.modified
    written = read(key)
    written["seen"] = 1
    written.leave_expiry()
    assert written.modified
    renewed = read(key)
    renewed.cycle_key()
    renewed.leave_expiry()
    assert renewed.modified


def test_the_cookie_lasts_the_idle_timeout_from_each_request(
    operator: Client, settings: Any
) -> None:
    for _ in range(2):
        response = index(operator)
        assert response.cookies["sessionid"]["max-age"] == settings.ADMIN_IDLE_TIMEOUT_S


@pytest.mark.parametrize("path", ["/liveness", "/admin/"])
def test_a_cookie_naming_no_session_is_never_saved(client: Client, path: str) -> None:
    """Saved on every request (SESSION_SAVE_EVERY_REQUEST), a random sessionid became a new
    row on each call: one per request, on any path."""
    client.cookies["sessionid"] = "a" * 32
    body = json.dumps({"hash_id": "x"})
    response = client.post(path, body, content_type="application/json")
    assert response.status_code in (302, 401)
    assert not Session.objects.exists()
    cookie = response.cookies.get("sessionid")
    assert cookie is None or cookie.value == ""  # left as it was, or dropped: never a new key


def test_a_login_ends_at_its_absolute_limit_however_active(operator: Client, settings: Any) -> None:
    assert settings.ADMIN_LOGIN_MAX_S == 43_200
    session = operator.session
    session[SIGNED_IN_AT] -= settings.ADMIN_LOGIN_MAX_S - 60  # a minute short: still in
    session.save()
    assert index(operator).status_code == 200
    session = operator.session
    session[SIGNED_IN_AT] -= 61  # active all along, but past the limit
    session.save()
    response = index(operator)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"
    assert not Session.objects.exists()  # deleted, not left to expire


def test_a_sign_in_deletes_expired_sessions(client: Client, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    stale = [
        Session(session_key=f"{n:040x}", session_data="", expire_date=timezone.now())
        for n in range(3)
    ]
    Session.objects.bulk_create(stale)
    client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert "_auth_user_id" in client.session
    assert Session.objects.count() == 1  # the new login's
