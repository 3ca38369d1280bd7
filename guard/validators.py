"""Validators of the names an operator chooses (tenants, groups, usernames, evaluated data
sets): below every app that stores one (accounts, calibration, guard's own group form).
Tenants and groups are also read apart from the others of their kind (``read_apart``),
usernames from the other accounts' (``username_apart``)."""

import unicodedata
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from ml.text import alphabets_of, reads_as, refused_in_name, skeleton

NO_CONTROLS = (
    "Enter a name without control characters (line breaks, tabs, escapes) or bidirectional "
    "text controls: found %(found)s."
)


def no_control_characters(value: str) -> None:
    """Refuse a name with a character that could break a log line, drive a terminal or
    reorder how the name is shown (ml.text.refused_in_name)."""
    found = refused_in_name(value)
    if found:
        raise ValidationError(
            NO_CONTROLS, code="control_characters", params={"found": ", ".join(found)}
        )


INVISIBLE_NAME = (
    "This name shows as nothing: it holds only invisible characters or spaces. Enter a name "
    "people can read."
)
LOOKALIKE_NAME = (
    "This name reads the same as %(kind)s #%(pk)s's: they differ only in invisible characters, "
    "spacing, how accented letters are encoded or a letter's width or style (“Ａ” or “𝐀” "
    "for “A”). Choose a name people can tell apart."
)


def read_apart(name: str, others: Iterable[tuple[Any, str]], kind: str) -> None:
    """Refuse a new ``name`` that shows as nothing, or reads as (``ml.text.reads_as``) one of
    ``others`` ((pk, name) of the other rows of its ``kind``, "tenant" or "group"): two rows
    shown alike, and an operator resets, grants or revokes the wrong one."""
    shown = reads_as(name)
    if name and not shown:  # "\u200b" passed the blank check: a row shown blank
        raise ValidationError(INVISIBLE_NAME, "invisible")
    for pk, other in others:
        if reads_as(other) == shown:
            raise ValidationError(LOOKALIKE_NAME, "lookalike", {"kind": kind, "pk": pk})


MIXED_ALPHABETS = (
    "Enter a username whose letters come from one alphabet: this one mixes %(alphabets)s "
    "letters, which look alike (a Cyrillic “а” reads as a Latin “a”)."
)
LOOKALIKE_USERNAME = (
    "This username reads the same as user #%(pk)s's: they differ only in case, invisible "
    "characters, how a letter is encoded or letters that look alike (“rn” and “m”, “1” and “l”, "
    "“0” and “O”, a dotless “ı” and “i”). Choose a username people can tell apart."
)


def shown(name: str) -> None:
    """Refuse a username that shows as nothing, as stored (NFKC): the Hangul fillers (U+3164,
    U+FFA0, U+115F, U+1160) are letters to Django's username rule and invisible, so
    createsuperuser made a superuser whose name, in every history, was blank."""
    if not reads_as(unicodedata.normalize("NFKC", name)):
        raise ValidationError(INVISIBLE_NAME, "invisible")


def one_alphabet(name: str) -> None:
    """Refuse a username whose letters come from more than one look-alike alphabet, as
    stored (NFKC: a mathematical "𝐚" is stored as a Latin "a")."""
    mixed = alphabets_of(unicodedata.normalize("NFKC", name))
    if len(mixed) > 1:
        shown = " and ".join(a.capitalize() for a in mixed)
        raise ValidationError(MIXED_ALPHABETS, "mixed_alphabets", {"alphabets": shown})


def username_keys(name: str) -> set[str]:
    """A username as people tell it from another: as stored (NFKC, as Django's
    ``normalize_username``), as read (``reads_as``), in any case, by its UTS #39 skeleton
    (``ml.text.skeleton``). Folded before and after the skeleton, since "admIn" reads as
    "admin" in another case and as "admln" by its shape: two names that share a key are
    confused. NFKC first, as Django stores a name: the skeleton has no fullwidth letters, and
    createsuperuser, which stores a name normalized, let "ａｄｍｉｎ" pass beside "admin" (an
    IntegrityError's traceback) and made "ｆａｃｉａ-system" an active superuser
    "facia-system"."""
    shown = reads_as(unicodedata.normalize("NFKC", name))
    return {skeleton(shown.casefold()).casefold(), skeleton(shown).casefold()}


def username_apart(name: str, others: Iterable[tuple[Any, str]]) -> None:
    """Refuse a new username that mixes look-alike alphabets (``ml.text.alphabets_of``), or
    that shares a key (``username_keys``) with one of ``others`` ((pk, username) of the other
    accounts): the history names who changed what by username, and "Manager", "mаnager" (a
    Cyrillic "а") or "rnanager" beside "manager" made one operator's changes read as
    another's. Names only one letter apart that people read apart ("carl" and "cari") pass."""
    one_alphabet(name)
    keys = username_keys(name)
    for pk, other in others:
        if keys & username_keys(other):
            raise ValidationError(LOOKALIKE_USERNAME, "lookalike", {"pk": pk})
