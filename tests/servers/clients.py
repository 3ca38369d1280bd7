"""Clients of a running server: tenants, selfie bodies, concurrent bursts and their outcomes."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass

import requests

from bench.images import selfie_body as selfie_body  # re-exported for the tests
from tests.servers.processes import manage

ADMIN_USER = """
from django.contrib.auth.models import Permission, User
perms = [p.split(".") for p in {perms!r}]
user = User.objects.create_user({name!r}, password={password!r}, is_staff=True,
                                is_superuser=not perms)
for app, codename in perms:
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label=app, codename=codename))
"""
CSRF_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def admin_session(base: str, env: dict[str, str], *perms: str) -> requests.Session:
    """A session logged in through the admin's login form of the server at ``base`` (``env``:
    its environment), as a new staff user with ``perms`` ("app_label.codename"), or as a new
    superuser when none are named."""
    name, password = f"op-{uuid.uuid4().hex[:8]}", "Servers-Admin-Passw0rd"
    manage(env, "shell", "-c", ADMIN_USER.format(name=name, password=password, perms=perms))
    session = requests.Session()
    login = f"{base}/admin/login/"
    token = CSRF_TOKEN.search(session.get(login, timeout=60).text)
    assert token is not None
    form = {"csrfmiddlewaretoken": token.group(1), "username": name, "password": password}
    session.post(login, data=form, headers={"Referer": login}, timeout=60)
    assert "sessionid" in session.cookies
    return session


def create_tenant(
    env: dict[str, str], name: str, limit: int | None = None, rate: int | None = None
) -> str:
    args = ["create_tenant", name] + ([] if limit is None else ["--limit", str(limit)])
    args += [] if rate is None else ["--rate-limit", str(rate)]
    return manage(env, *args).strip().splitlines()[-1]


@dataclass(frozen=True)
class Outcome:
    request_id: str
    status: int  # 0: the connection failed or was cut


def post(base: str, body: bytes, request_id: str) -> Outcome:
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    try:
        response = requests.post(f"{base}/liveness", data=body, headers=headers, timeout=60)
    except requests.RequestException:
        return Outcome(request_id, 0)
    return Outcome(request_id, response.status_code)


def burst(base: str, body: bytes, clients: int, tag: str) -> list[Outcome]:
    """``clients`` requests released at the same instant, one thread each."""
    barrier = threading.Barrier(clients)
    outcomes: list[Outcome] = []

    def one(index: int) -> None:
        barrier.wait()
        outcomes.append(post(base, body, f"{tag}-{index}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def statuses(outcomes: list[Outcome]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return dict(sorted(counts.items()))
