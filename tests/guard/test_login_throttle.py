"""Admin login throttle: lockout per account and per client IP, decided before the hash runs."""

from typing import Any

import pytest
from django.contrib.auth.backends import ModelBackend
from django.test import override_settings
from django.test.client import Client

from guard import login, throttle

PASSWORD = "correct horse battery staple"
LOGIN_URL = "/admin/login/?next=/admin/"
LOCKED = "Too many failed login attempts for this account or from this address."


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The usernames whose password was checked (ModelBackend runs the hasher)."""
    seen: list[str] = []
    original = ModelBackend.authenticate

    def counting(self: ModelBackend, request: Any, username: Any = None, **kw: Any) -> Any:
        seen.append(username)
        return original(self, request, username=username, **kw)

    monkeypatch.setattr(ModelBackend, "authenticate", counting)
    return seen


def attempt(username: str, password: str, ip: str = "192.0.2.1") -> tuple[bool, str]:
    """Post the admin login form from ``ip`` with a fresh client: (logged in, page text)."""
    client = Client(REMOTE_ADDR=ip)
    response = client.post(LOGIN_URL, {"username": username, "password": password})
    return "_auth_user_id" in client.session, response.content.decode()


@pytest.mark.slow  # 10 s at load 8: 200 attempts
@pytest.mark.django_db
def test_200_wrong_passwords_then_the_right_one_is_refused(
    admin_user: Any, hashes: list[str]
) -> None:
    for _ in range(200):
        assert not attempt("root", "wrong")[0]
    logged_in, page = attempt("root", PASSWORD)
    assert not logged_in
    assert LOCKED in page and "Try again in" in page
    # Only the attempts before the lockout ran the hasher (~180 ms each).
    assert len(hashes) == 5


@pytest.mark.django_db
def test_an_account_is_locked_from_every_address(admin_user: Any, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser("other", "o@example.com", PASSWORD)
    for i in range(5):
        assert not attempt("root", "wrong", ip=f"198.51.100.{i}")[0]
    assert LOCKED in attempt("root", PASSWORD, ip="203.0.113.9")[1]
    assert attempt("other", PASSWORD, ip="198.51.100.1")[0]


@pytest.mark.slow  # 12 s at load 8: a password hash per attempt
@pytest.mark.django_db
def test_an_address_is_locked_for_every_account(admin_user: Any) -> None:
    for i in range(20):
        assert not attempt(f"guess{i}", "wrong", ip="198.51.100.7")[0]
    logged_in, page = attempt("root", PASSWORD, ip="198.51.100.7")
    assert not logged_in and LOCKED in page
    assert attempt("root", PASSWORD, ip="198.51.100.8")[0]


@pytest.mark.django_db
def test_the_lockout_ends_after_the_cool_off(
    admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        attempt("root", "wrong")
    assert LOCKED in attempt("root", PASSWORD)[1]
    later = throttle.time.time() + 2 * 900
    monkeypatch.setattr(throttle.time, "time", lambda: later)
    assert attempt("root", PASSWORD)[0]


@pytest.mark.slow  # 9 s at load 8: a password hash per attempt
@pytest.mark.django_db
def test_a_successful_login_resets_the_failures(admin_user: Any) -> None:
    for _ in range(4):
        attempt("root", "wrong")
    assert attempt("root", PASSWORD)[0]
    for _ in range(4):
        attempt("root", "wrong")
    assert attempt("root", PASSWORD)[0]


@pytest.mark.django_db
@override_settings(LOGIN_CONCURRENT_HASHES=1)
def test_a_login_while_every_hashing_slot_is_taken_is_refused_at_once(
    admin_user: Any, hashes: list[str]
) -> None:
    with login.hashing_slot() as held:
        assert held
        logged_in, page = attempt("root", PASSWORD)
    assert not logged_in and login.BUSY in page and hashes == []
    assert attempt("root", PASSWORD)[0]
