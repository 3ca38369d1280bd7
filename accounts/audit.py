"""The admin's history (Django's ``LogEntry``) for every change to a tenant's access or
verdicts: hash_ids issued and revoked, quota resets, thresholds, profiles, crop policies,
challenges, calibrations. Management commands have no request user; they are attributed to
``SYSTEM_USER``, an inactive account with no usable password, and say which command made the
change. The admin writes each change with its entry through ``recorded``: both or neither."""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, transaction
from django.db.models import Model
from django.http import HttpRequest

from ml.evaluate import amount

SYSTEM_USER = "facia-system"

T = TypeVar("T")

# A change whose transaction failed: it and its history entry are written in one (the admin's
# buttons and actions), so neither was kept.
NOT_WRITTEN = (
    "Nothing was changed: the change or its history entry could not be written (the server "
    "log has the details). Try again."
)


def recorded(
    request: HttpRequest,
    change: Callable[[], T],
    not_done: str,
    log: logging.Logger,
    logged: str,
    *args: object,
) -> T | None:
    """``change()``, a change and its history entry, in one transaction: both or neither. Its
    result; None when the database refused either (nothing written), logged with the traceback
    (``logged % args``, on ``log``) and said on the page: ``not_done``, then NOT_WRITTEN. Any
    other error is raised, the change rolled back: a caller that must tell its change's own
    None from a refusal has the change raise instead (the shadow switch's CandidateGone)."""
    try:
        with transaction.atomic():
            return change()
    except DatabaseError:
        log.exception(logged, *args)
        messages.error(request, f"{not_done} {NOT_WRITTEN}")
        return None


def system_user() -> AbstractBaseUser:
    user, created = get_user_model().objects.get_or_create(
        username=SYSTEM_USER, defaults={"is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def record(
    obj: Model,
    message: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
    added: bool = False,
) -> None:
    """One history entry on ``obj``: by ``user``, or by the system user for a command."""
    actor = user if isinstance(user, AbstractBaseUser) and user.pk is not None else system_user()
    LogEntry.objects.log_actions(
        user_id=actor.pk,
        queryset=[obj],
        action_flag=ADDITION if added else CHANGE,
        change_message=message,
        single_object=True,
    )


def calibrated(stored: Model, threshold_before: float, threshold: float) -> str:
    return f"Calibrated: {stored}, threshold {threshold_before:.4f} → {threshold:.4f}."


def shadowed(stored: Model, days: int, replaced: int | None, active: int | None) -> str:
    """A candidate set in shadow; ``replaced``: the candidate it set aside (its flips are no
    longer counted on the tenant's page), None when there was none; ``active``: the tenant's
    active calibration, None when the shipped score maps answer."""
    aside = f", replacing candidate #{replaced} (set aside)" if replaced is not None else ""
    return (
        f"Shadow candidate: {stored}, for {amount(days, 'day')}{aside} ({still_answers(active)})."
    )


def still_answers(active: int | None) -> str:
    """What answers the checks while a candidate is in shadow: "the active calibration" was
    said of a tenant with none, whose checks the shipped score maps answer."""
    if active is None:
        return "the shipped score maps still answer"
    return "the active calibration still answers"


def by_command(obj: Model, command: str, message: str, added: bool = False) -> None:
    record(obj, f"{message} (manage.py {command})", added=added)
