"""Who may read a model's rows: one rule for the whole console (no admin import here, so the
admin site's own modules can ask it while they load)."""

from typing import Any

from django.contrib.auth import get_permission_codename
from django.db.models import Model


def user_may_view(user: Any, model: type[Model]) -> bool:
    """Whether ``user`` may read ``model``'s rows: Django admin's rule for its list
    (``ModelAdmin.has_view_permission``), the view or the change permission. The tenant page's
    calibration blocks, the calibration upload and the history checked the view permission
    alone, so a user holding only ``change_calibration`` opened the calibrations' list yet was
    shown no calibration on a tenant's page or in its history."""
    opts = model._meta
    return any(
        user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    )
