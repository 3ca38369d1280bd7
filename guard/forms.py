"""The admin's password checks with the login throttle (``guard.login``) around them: the
login form's, and the old password's of a user changing their own."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from guard import login


@contextmanager
def throttled(request: HttpRequest | None, username: str) -> Iterator[None]:
    """Around one password check of ``username``: refused before the hash runs when the
    account or client is locked out or every hashing slot is taken; a ValidationError out of
    it counts as a failure, else the failures are cleared."""
    if message := login.locked_out(request, username):
        raise ValidationError(message, code="locked_out")
    with login.hashing_slot() as free:
        if not free:
            raise ValidationError(login.BUSY, code="busy")
        try:
            yield
        except ValidationError:
            login.failed(request, username)
            raise
    login.succeeded(request, username)


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """Refuses a locked-out account or client before the password is hashed."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        with throttled(self.request, username):
            cleaned = super().clean()
        return cleaned


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """The admin's "Change password" of the signed-in user: its old password is checked as a
    login's is. Unthrottled, whoever held an operator's session (a browser left open, a stolen
    cookie) could guess the old password without end, one ~180 ms hash per request outside
    the hashing slots, and with it take the account over for good."""

    required_css_class = "required"  # as Django's admin form

    def __init__(self, user: Any, *args: Any, request: HttpRequest | None = None, **kwargs: Any):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        with throttled(self.request, self.user.get_username()):
            old: str = super().clean_old_password()
        return old
