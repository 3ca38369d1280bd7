"""Validators of the names an operator chooses (tenants, groups, evaluated data sets): below
every app that stores one (accounts, calibration, guard's own group form)."""

from django.core.exceptions import ValidationError

from ml.text import refused_in_name

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
