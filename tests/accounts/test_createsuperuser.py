"""``manage.py createsuperuser`` holds usernames to the console's rule (``accounts.usernames``):
with ``--noinput`` (``--username`` or DJANGO_SUPERUSER_USERNAME, ``bin/entrypoint manage``
too) and at its prompt, which asks again. Held by the admin's forms only, the rule would let
the command create "facia-system", "Admin" and "admın" beside "admin"."""

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.usernames import RESERVED_USERNAME
from guard.validators import INVISIBLE_NAME
from tests.conftest import REPO
from tests.servers.entrypoint import ENTRYPOINT

PASSWORD = "An-0ld-Passw0rd"
LOOKALIKE = "This username reads the same as user #{pk}'s"


def create(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """createsuperuser --noinput with the username from the environment, as a deployment's
    one-off job sets it."""
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", name)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", "--email", "a@example.org", verbosity=0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("Admin", LOOKALIKE),
        ("adm\u0131n", LOOKALIKE),  # a dotless "ı"
        ("\u0251dmin", LOOKALIKE),  # a Latin alpha "ɑ"
        ("facia-system", RESERVED_USERNAME),
        ("FACIA-SYSTEM", RESERVED_USERNAME),
        ("facia-systern", RESERVED_USERNAME),  # "rn" for "m", before the account exists
        ("fa\u0441ia-ops", "Enter a username whose letters come from one alphabet"),
        # fullwidth letters: the command stores a name as NFKC makes it ("admin"), and the
        # rule read them as they came: an active superuser "facia-system" was created
        ("\uff41\uff44\uff4d\uff49\uff4e", LOOKALIKE),
        ("\uff46\uff41\uff43\uff49\uff41-system", RESERVED_USERNAME),
        ("\U0001d41a\u0434\u043c\u0438\u043d", "Enter a username whose letters come from one"),
        # Hangul fillers: letters to Django's rule, shown as nothing (a superuser named blank)
        ("\u3164", INVISIBLE_NAME),
        ("\uffa0\u115f", INVISIBLE_NAME),
        # 38 characters given, 152 stored (NFKC spells the ligature out): over the column's 150
        ("\ufdf2" * 38, "Ensure this value has at most 150 characters (it has 152)."),
    ],
)
def test_noinput_refuses_a_lookalike_username(
    name: str, refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = User.objects.create_superuser("admin", password=PASSWORD)
    with pytest.raises(CommandError) as refused:
        create(name, monkeypatch)
    assert str(refused.value).startswith(refusal.format(pk=admin.pk)), ascii(name)
    assert list(User.objects.values_list("username", flat=True)) == ["admin"]


@pytest.mark.django_db
def test_noinput_creates_names_people_tell_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """One letter apart is not alike: "cari" beside "carl", "anne" beside "anna"; "adm1n"
    beside "admin" neither (UTS #39 tells "1" and "l" from "i": its dot)."""
    for name in ("carl", "cari", "anna", "anne", "admin", "adm1n", "\u043f\u0435\u0442\u0440"):
        create(name, monkeypatch)
    assert User.objects.count() == 7


def terminal_session(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    """(pid, controller) of ``argv`` run with a new pseudo-terminal as its controlling
    terminal: createsuperuser prompts only on a terminal, and its password prompt reads
    /dev/tty."""
    pid, controller = pty.fork()
    if pid == 0:  # the child: never returns
        os.chdir(REPO)
        os.execve(argv[0], argv, env)
    return pid, controller


def read_until(controller: int, text: str, seen: list[str], timeout: float = 60.0) -> None:
    """Read the terminal into ``seen`` until ``text`` appears after what was read before."""
    start = len("".join(seen))
    deadline = time.monotonic() + timeout
    while text not in "".join(seen)[start:]:
        assert time.monotonic() < deadline, f"no {text!r} in {''.join(seen)!r}"
        if select.select([controller], [], [], 1.0)[0]:
            seen.append(os.read(controller, 65536).decode())


@pytest.mark.django_db(transaction=True)  # committed: the command's own process reads it
def test_the_prompt_asks_again_for_a_lookalike_name() -> None:
    """Through ``bin/entrypoint manage``, as the image runs it, on a terminal."""
    admin = User.objects.create_superuser("admin", password=PASSWORD)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}
    pid, controller = terminal_session([str(ENTRYPOINT), "manage", "createsuperuser"], env)
    seen: list[str] = []
    try:
        for prompt, answer in [
            ("Username", "adm\u0131n"),  # a dotless "ı": refused, asked again
            ("Username", "rnallory"),
            ("Email address", "m@example.org"),
            ("Password", PASSWORD),
            ("Password (again)", PASSWORD),
        ]:
            read_until(controller, prompt, seen)
            os.write(controller, f"{answer}\n".encode())
        read_until(controller, "Superuser created successfully.", seen)
    finally:
        os.close(controller)
        os.waitpid(pid, 0)
    assert f"reads the same as user #{admin.pk}'s" in "".join(seen)
    assert sorted(User.objects.values_list("username", flat=True)) == ["admin", "rnallory"]


@pytest.mark.django_db(transaction=True)
def test_entrypoint_manage_refuses_a_lookalike_name(tmp_path: Path) -> None:
    User.objects.create_superuser("mallory", password=PASSWORD)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
        "DJANGO_SUPERUSER_USERNAME": "rnallory",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    argv = [str(ENTRYPOINT), "manage", "createsuperuser", "--noinput", "--email", "r@x.org"]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "reads the same as user #" in done.stderr
    assert list(User.objects.values_list("username", flat=True)) == ["mallory"]
