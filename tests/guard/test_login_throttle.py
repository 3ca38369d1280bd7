"""Admin login throttle: lockout per account and per client IP, decided before the hash runs."""

import re
import time
from typing import Any

import pytest
from django.contrib.auth.backends import ModelBackend
from django.test import override_settings
from django.test.client import Client

from guard import login, throttle
from guard.models import ACCOUNT_SCOPE, Counter

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


# What people type as the username: their password, as often as not.
TYPED = "Tr0ub4dor-3-typed-in-username"


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
    later = time.time() + 2 * 900
    monkeypatch.setattr(time, "time", lambda: later)
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


@pytest.mark.django_db
@override_settings(LOGIN_IP_FAILURE_LIMIT=3)
def test_an_ipv6_client_is_one_address_for_all_of_its_64(admin_user: Any) -> None:
    """A client sending from a new address of its /64 each time (it holds 2^64 of them) was
    never locked out: 3 guesses from 3 addresses of 2001:db8:1:2::/64, then the right password
    from a 4th, logged in before."""
    for i in range(3):
        assert not attempt(f"guess{i}", "wrong", ip=f"2001:db8:1:2::{i + 1:x}")[0]
    logged_in, page = attempt("root", PASSWORD, ip="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert not logged_in and LOCKED in page
    # Another /64, and an IPv4 client, are other clients.
    assert attempt("root", PASSWORD, ip="2001:db8:1:3::1")[0]
    assert attempt("root", PASSWORD, ip="198.51.100.8")[0]


def test_a_client_is_counted_under_its_address_or_its_64() -> None:
    assert throttle.client_network("198.51.100.7") == "198.51.100.7"
    assert throttle.client_network("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert throttle.client_network("::ffff:198.51.100.7") == "198.51.100.7"
    assert throttle.client_network("unknown") == "unknown"


def change_password(client: Client, old: str, new: str = "An0ther-Passw0rd!") -> str:
    data = {"old_password": old, "new_password1": new, "new_password2": new}
    return client.post("/admin/password_change/", data).content.decode()


@pytest.mark.django_db
def test_the_old_password_of_a_password_change_is_throttled_as_a_login(admin_user: Any) -> None:
    """Whoever holds an operator's session may not guess the old password without end (each
    guess a hash outside the hashing slots): after 5 wrong ones the 6th, right, is refused."""
    session = Client(REMOTE_ADDR="192.0.2.1")
    session.force_login(admin_user)
    for _ in range(5):
        assert "Your old password was entered incorrectly" in change_password(session, "wrong")
    assert LOCKED in change_password(session, PASSWORD)
    admin_user.refresh_from_db()
    assert admin_user.check_password(PASSWORD)
    # The account is locked for the login page too, from any address.
    assert LOCKED in attempt("root", PASSWORD, ip="198.51.100.9")[1]


@pytest.mark.django_db
def test_the_right_old_password_changes_it_and_clears_the_failures(admin_user: Any) -> None:
    session = Client(REMOTE_ADDR="192.0.2.1")
    session.force_login(admin_user)
    for _ in range(4):
        change_password(session, "wrong")
    response = session.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "N3w-Passw0rd!x",
            "new_password2": "N3w-Passw0rd!x",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/admin/password_change/done/"
    assert attempt("root", "N3w-Passw0rd!x")[0]
    for _ in range(4):
        attempt("root", "wrong")
    assert attempt("root", "N3w-Passw0rd!x")[0]


@pytest.mark.django_db
def test_a_username_typed_is_stored_and_shown_only_by_its_hmac(admin_client: Client) -> None:
    """A failed login's username was stored in clear (guard_counter.subject) and shown on the
    Counters page; now an HMAC of it, shown by its first 8 digits, found by the username."""
    assert not attempt(TYPED, "wrong")[0]
    rows = Counter.objects.filter(scope=ACCOUNT_SCOPE)
    digest = rows.get().subject
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest == login.account_subject(TYPED)
    page = admin_client.get("/admin/guard/counter/").content.decode()
    assert TYPED not in page and digest not in page and f"account {digest[:8]}…" in page
    found = admin_client.get("/admin/guard/counter/", {"q": TYPED}).content.decode()
    other = admin_client.get("/admin/guard/counter/", {"q": "someone"}).content.decode()
    assert f"account {digest[:8]}" in found and f"account {digest[:8]}" not in other


def test_the_accounts_hmac_is_keyed_and_of_the_name_as_stored() -> None:
    """Keyed (SECRET_KEY): a copy of the table cannot test guesses; NFKC, as Django stores a
    name: a fullwidth "ｒｏｏｔ" is the account "root"."""
    digest = login.account_subject("root")
    assert login.account_subject("\uff52\uff4f\uff4f\uff54") == digest
    with override_settings(SECRET_KEY="another key"):
        assert login.account_subject("root") != digest
