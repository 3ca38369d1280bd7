"""Validators of the names an operator chooses (tenants, groups, evaluated data sets): below
every app that stores one (accounts, calibration, guard's own group form). Tenants and groups
are also read apart from the others of their kind (``read_apart``)."""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from ml.text import reads_as, refused_in_name

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
