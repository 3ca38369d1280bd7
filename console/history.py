"""The admin's history as its reader may read it. An entry says what a tenant page shows only
with other permissions: a hash_id (its prefix), a calibration (its id, its thresholds), a
shadow candidate's flips (counted from the check records), the evaluation a target APCER was
read from. The tenant page leaves each out without its permission; the history and the index's
recent changes, as Django shows them, would show them to anyone who may view the tenant."""

import re
from collections.abc import Iterable
from typing import Any

from django.contrib.admin.models import LogEntry

from accounts.models import HashId
from calibration.models import Calibration, Evaluation
from guard.viewing import user_may_view
from liveness.models import LivenessCheck

# The messages of accounts.admin, manage.py create_tenant and issue_hash_id, by prefix.
HASH_ID_ENTRIES = ("Issued hash_id ", "Revoked hash_id ", "Deleted hash_id ")
HASH_ID_HIDDEN = "Hash_ids changed (the details need the view permission of hash_ids)."
# The messages of calibration.admin, calibration.jobs and manage.py calibrate (accounts.audit).
CALIBRATION_ENTRIES = (
    "Calibrated: ",
    "Shadow candidate: ",
    "Promoted shadow candidate ",
    "Discarded shadow candidate ",
    "Reverted to uncalibrated: ",
)
CALIBRATION_HIDDEN = "Calibration changed (the details need the view permission of calibrations)."
FLIP_COUNTS = re.compile(r" \(\d+ checks in shadow: \d+ live → spoof, \d+ spoof → live\)")
FROM_EVALUATION = re.compile(r" from target APCER \S+% on evaluation #\d+")


def shown_to(user: Any, message: str) -> str:
    """A history entry's ``message`` as ``user`` may read it: a hash_id's entry (its prefix)
    needs ``view_hashid``, a calibration's ``view_calibration``, its flip counts
    ``view_livenesscheck``, the evaluation behind a threshold ``view_evaluation`` (without,
    the entry says only what changed on the tenant); each change permission lets one view, as
    in the lists."""
    if message.startswith(HASH_ID_ENTRIES) and not user_may_view(user, HashId):
        return HASH_ID_HIDDEN
    if message.startswith(CALIBRATION_ENTRIES) and not user_may_view(user, Calibration):
        return CALIBRATION_HIDDEN
    if not user_may_view(user, LivenessCheck):
        message = FLIP_COUNTS.sub("", message)
    if not user_may_view(user, Evaluation):
        message = FROM_EVALUATION.sub("", message)
    return message


def shown(entries: Iterable[LogEntry], user: Any) -> None:
    """Each of ``entries`` (read for a page, never saved again) with its message as ``user``
    may read it."""
    for entry in entries:
        entry.change_message = shown_to(user, entry.change_message)
