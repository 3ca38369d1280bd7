"""The admin's authentication: Django's, except that nobody logs in as ``audit.SYSTEM_USER``.

The history credits management commands to that account; whoever logged in as it would have
their changes read as a command's. The admin makes it read only and reserves its name, but a
database from before that (the account activated and given a password) would still let it
in: here it is refused whatever its row says, and a session already open as it is ended on
its next request (``get_user`` asks ``user_can_authenticate`` too)."""

from typing import Any

from django.contrib.auth.backends import ModelBackend

from accounts.audit import SYSTEM_USER


class AccountBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and user.get_username() != SYSTEM_USER
