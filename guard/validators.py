"""Validators of the names an operator chooses (tenants, groups, usernames, evaluated data
sets): below every app that stores one (accounts, calibration, guard's own group form).
Tenants and groups are also read apart from the others of their kind (``read_apart``),
usernames from the other accounts' (``username_apart``)."""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from ml.text import alphabets_of, reads_as, refused_in_name

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
    "spacing or how accented letters are encoded. Choose a name people can tell apart."
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
    "characters or how a letter is encoded. Choose a username people can tell apart."
)


def username_key(name: str) -> str:
    """A username as people tell it from another: as read (``reads_as``), in any case."""
    return reads_as(name).casefold()


def username_apart(name: str, others: Iterable[tuple[Any, str]]) -> None:
    """Refuse a new username that mixes look-alike alphabets (``ml.text.alphabets_of``), or
    that reads as one of ``others`` ((pk, username) of the other accounts) in any case: the
    history names who changed what by username, and "Manager" or "mаnager" (a Cyrillic "а")
    beside "manager" made one operator's changes read as another's."""
    mixed = alphabets_of(name)
    if len(mixed) > 1:
        shown = " and ".join(a.capitalize() for a in mixed)
        raise ValidationError(MIXED_ALPHABETS, "mixed_alphabets", {"alphabets": shown})
    key = username_key(name)
    for pk, other in others:
        if username_key(other) == key:
            raise ValidationError(LOOKALIKE_USERNAME, "lookalike", {"pk": pk})
