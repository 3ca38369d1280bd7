"""A tenant's name is chosen by an operator and shown in the admin, the console, the logs and
commands' output: a control character (newline, ESC, NUL, C0/C1) or a Unicode bidirectional
control (U+202E reorders what follows it) is refused with a clear error, in the admin's form
and in ``manage.py create_tenant`` (exit 1, nothing created). A row stored before keeps its
change page, and is renamed there (Django's test client, the real admin)."""

import os
import subprocess
import sys
from typing import Any

import pytest
from django.core.management import CommandError
from django.test import Client

from accounts.models import HashId, Tenant
from tests.accounts.test_admin import INLINE_MANAGEMENT, add_tenant
from tests.conftest import REPO
from tests.conftest import run_command as run

pytestmark = pytest.mark.django_db

# Each name, and where its first refused character is.
REFUSED = {
    "Ac\nme": "U+000A at position 3",
    "Ac\x1b[2Jme": "U+001B at position 3",
    "Ac\x00me": "U+0000 at position 3",
    "Ac\tme": "U+0009 at position 3",
    "Ac\x7fme": "U+007F at position 3",
    "Ac\x85me": "U+0085 at position 3",  # C1 NEL: a line break to some terminals
    "Ac\x9b2Jme": "U+009B at position 3",  # C1 CSI: ESC[ to a terminal
    "Ac\u2028me": "U+2028 at position 3",
    "acme\u202egnp.exe": "U+202E at position 5",  # shown as "acmeexe.png"
    "a\u2066b\u2069": "U+2066 at position 2, U+2069 at position 4",
    "a\u200fb": "U+200F at position 2",
    # At either end: trimmed away unseen before, as Django's forms strip every whitespace.
    "\nAcme": "U+000A at position 1",
    "Acme\t": "U+0009 at position 5",
    " Acme\r\n ": "U+000D at position 5, U+000A at position 6",  # once its spaces are trimmed
    "\u2028Acme": "U+2028 at position 1",
}
ERROR = "Enter a name without control characters (line breaks, tabs, escapes) or bidirectional "
LOOKALIKE_ERROR = (
    "This name reads the same as tenant #{pk}'s: they differ only in invisible characters, "
    "spacing, how accented letters are encoded or a letter's width or style (“Ａ” or “𝐀” "
    "for “A”). Choose a name people can tell apart."
)
# Accepted as they are: letters of any script, a zero-width joiner (some scripts need it).
ACCEPTED = ("Café Zürich", "Ακμή", "شركة", "क्ष\u200dत्र", "Acme (EU) #2")


@pytest.mark.parametrize(("name", "where"), REFUSED.items(), ids=list(map(ascii, REFUSED)))
def test_create_tenant_refuses_a_name_with_a_control(name: str, where: str) -> None:
    with pytest.raises(CommandError) as refused:
        run("create_tenant", name)
    message = str(refused.value)
    assert message.startswith(f"name: {ERROR}") and message.endswith(f"found {where}.")
    assert message.isprintable()  # the name itself is not echoed
    assert not Tenant.objects.exists() and not HashId.objects.exists()


def test_create_tenant_exits_1_with_the_error(tmp_path: Any) -> None:
    """manage.py as an operator runs it: the refusal comes before any database is opened."""
    environ = {**os.environ, "FACIA_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "manage.py", "create_tenant", "Ac\x1b[2Jme"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "CommandError: name: Enter a name without control characters" in done.stderr
    assert "\x1b" not in done.stderr + done.stdout and done.stdout == ""


@pytest.mark.parametrize("name", ACCEPTED)
def test_create_tenant_accepts_names_in_any_script(name: str) -> None:
    run("create_tenant", name)
    assert Tenant.objects.get().name == name


# Spaces around a name are trimmed, in the admin and by create_tenant alike.
TRIMMED = {"  Acme  ": "Acme", "\u00a0Acme\u3000": "Acme", "\u2003Café Zürich ": "Café Zürich"}


@pytest.mark.parametrize(("name", "kept"), TRIMMED.items(), ids=list(map(ascii, TRIMMED)))
def test_create_tenant_trims_the_spaces_around_a_name(name: str, kept: str) -> None:
    run("create_tenant", name)
    assert Tenant.objects.get().name == kept


@pytest.mark.parametrize(("name", "kept"), TRIMMED.items(), ids=list(map(ascii, TRIMMED)))
def test_the_admin_form_trims_the_spaces_around_a_name(
    admin_client: Client, name: str, kept: str
) -> None:
    assert b"new-hash-id" in add_tenant(admin_client, name=name).content  # added
    assert Tenant.objects.get().name == kept


def test_a_name_of_spaces_only_is_refused_as_blank(admin_client: Client) -> None:
    form = add_tenant(admin_client, name="\u3000  ").context["adminform"].form
    assert form.errors["name"] == ["This field cannot be blank."]
    with pytest.raises(CommandError, match="name: This field cannot be blank."):
        run("create_tenant", "  ")
    assert not Tenant.objects.exists()


@pytest.mark.parametrize(("name", "where"), REFUSED.items(), ids=list(map(ascii, REFUSED)))
def test_the_admin_form_refuses_a_name_with_a_control(
    admin_client: Client, name: str, where: str
) -> None:
    response = add_tenant(admin_client, name=name)
    assert response.status_code == 200  # the form again, with its error
    errors = response.context["adminform"].form.errors
    if "\x00" in name:  # Django's form field refuses it first, as clearly
        assert errors["name"] == ["Null characters are not allowed."]
    else:
        assert errors["name"] == [f"{ERROR}text controls: found {where}."]
    assert not Tenant.objects.exists() and not HashId.objects.exists()


def change_data(name: str) -> dict[str, str]:
    return {
        "name": name,
        "is_active": "on",
        "request_limit": "20",
        "threshold": "0.5",
        "profile": "fast",
        "crop_policy": "judge",
        "challenge": "none",
        "challenge_band": "0.75",
        **INLINE_MANAGEMENT,
    }


def test_a_name_stored_before_shows_and_is_renamed_on_its_change_page(
    admin_client: Client,
) -> None:
    tenant = Tenant.objects.create(name="Old\x1b[2J\u202eco")  # written before the validator
    url = f"/admin/accounts/tenant/{tenant.pk}/change/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.get("/admin/accounts/tenant/").status_code == 200

    kept = admin_client.post(url, change_data(tenant.name))  # saved as it is: refused
    assert kept.status_code == 200
    assert "found U+001B at position 4, U+202E at position 8" in kept.content.decode()
    tenant.refresh_from_db()
    assert tenant.request_limit is None

    renamed = admin_client.post(url, change_data("Old co"))
    assert renamed.status_code == 302, renamed.content
    renamed_tenant = Tenant.objects.get(pk=tenant.pk)  # mypy holds tenant's fields as narrowed
    assert (renamed_tenant.name, renamed_tenant.request_limit) == ("Old co", 20)


# Each reads as "Café Bank" once shown: an invisible character (zero-width space, joiner, word
# joiner, BOM, soft hyphen, Hangul filler), a run of spaces (HTML shows one), the Braille blank
# (U+2800, shown as a space) or the accent as a combining mark (NFD) rather than one code point.
LOOKALIKES = (
    "Café\u2800Bank",
    "Café\u200b Bank",
    "Ca\u200dfé Bank",
    "Café B\u2060ank",
    "\ufeffCafé Bank",
    "Caf\u00adé Bank",
    "Café Bank\u3164",
    "Café  Bank",
    "Cafe\u0301 Bank",
    "\uff23\uff41\uff46\u00e9 \uff22\uff41\uff4e\uff4b",  # fullwidth letters
    "\U0001d402af\u00e9 Bank",  # a mathematical bold C
)


@pytest.mark.parametrize("name", LOOKALIKES, ids=list(map(ascii, LOOKALIKES)))
def test_a_name_that_reads_as_another_tenants_is_refused(admin_client: Client, name: str) -> None:
    """Two tenants shown alike in the admin, the console and /metrics: an operator (or one
    with add_tenant who wants it) resets, revokes or recalibrates the wrong one."""
    original = Tenant.objects.create(name="Café Bank")
    with pytest.raises(CommandError) as refused:
        run("create_tenant", name)
    assert str(refused.value) == f"name: {LOOKALIKE_ERROR.format(pk=original.pk)}"
    response = add_tenant(admin_client, name=name)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["name"] == [LOOKALIKE_ERROR.format(pk=original.pk)]
    assert list(Tenant.objects.values_list("name", flat=True)) == ["Café Bank"]


# Each shows as nothing once its spaces are trimmed: zero-width space, word joiner + BOM, Hangul
# filler, variation selector, no-break and ideographic spaces around a zero-width space, Braille
# blanks.
INVISIBLE = ("\u200b", "\u2060\ufeff", "\u3164", "\ufe0f", "\u00a0\u200b\u3000", "\u2800\u2800")
INVISIBLE_ERROR = (
    "This name shows as nothing: it holds only invisible characters or spaces. Enter a name "
    "people can read."
)


@pytest.mark.parametrize("name", INVISIBLE, ids=list(map(ascii, INVISIBLE)))
def test_a_name_that_shows_as_nothing_is_refused(admin_client: Client, name: str) -> None:
    """Such a name passes the required check (not empty, no control character): taken, a
    tenant would be listed blank in the admin, the console and /metrics, and the first of them
    would block every later one as its look-alike."""
    with pytest.raises(CommandError) as refused:
        run("create_tenant", name)
    assert str(refused.value) == f"name: {INVISIBLE_ERROR}"
    response = add_tenant(admin_client, name=name)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == [INVISIBLE_ERROR]
    assert not Tenant.objects.exists() and not HashId.objects.exists()


def test_names_that_read_differently_are_accepted() -> None:
    Tenant.objects.create(name="Café Bank")
    for name in ("CAFÉ BANK", "Café Bank 2", "Cafe Bank"):
        run("create_tenant", name)
    assert Tenant.objects.count() == 4


def test_lookalikes_stored_before_keep_their_change_pages(admin_client: Client) -> None:
    Tenant.objects.create(name="Café Bank")
    twin = Tenant.objects.create(name="Café\u200b Bank")  # written before the check
    url = f"/admin/accounts/tenant/{twin.pk}/change/"
    kept = admin_client.post(url, change_data(twin.name))  # its name unchanged: saved
    assert kept.status_code == 302
    twin.refresh_from_db()
    assert twin.request_limit == 20


# "café" typed in Latin-1: Python decodes a command's arguments with surrogateescape, so the
# name reaches the command as "caf\udce9", which no database query can encode.
NOT_UTF8 = os.fsdecode(b"caf\xe9")


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (("issue_hash_id", NOT_UTF8), r'No tenant named "caf\xe9".'),
        (("calibrate", NOT_UTF8, "folder", "--dry-run"), r'No tenant named "caf\xe9".'),
        (("evaluate", "folder", "--tenant", NOT_UTF8), r'No tenant named "caf\xe9".'),
        (("reset_quotas", "--tenant", "acme", "--tenant", NOT_UTF8), r"No tenant named: caf\xe9"),
    ],
    ids=["issue_hash_id", "calibrate", "evaluate", "reset_quotas"],
)
def test_a_name_typed_not_in_utf8_is_no_tenant(command: tuple[str, ...], said: str) -> None:
    """A plain refusal showing the bytes typed, not a UnicodeEncodeError's traceback (exit 1,
    "surrogates not allowed") from the query, nothing changed."""
    Tenant.objects.create(name="acme", requests_used=3)
    with pytest.raises(CommandError) as refused:
        run(*command)
    assert str(refused.value) == said
    assert Tenant.objects.get(name="acme").requests_used == 3


def test_create_tenant_refuses_a_name_typed_not_in_utf8() -> None:
    """Refused, showing the bytes typed, before the query that cannot encode it (a traceback,
    "surrogates not allowed"); nothing created."""
    with pytest.raises(CommandError) as refused:
        run("create_tenant", NOT_UTF8)
    assert str(refused.value) == r'name: "caf\xe9" is not UTF-8 text: type it in a UTF-8 terminal.'
    assert not Tenant.objects.exists() and not HashId.objects.exists()
