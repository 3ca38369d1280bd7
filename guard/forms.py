"""The admin login form with the login throttle (``guard.login``) around the password check."""

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from guard import login


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """Refuses a locked-out account or client before the password is hashed."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        if message := login.locked_out(self.request, username):
            raise ValidationError(message, code="locked_out")
        with login.hashing_slot() as free:
            if not free:
                raise ValidationError(login.BUSY, code="busy")
            try:
                cleaned = super().clean()
            except ValidationError:
                login.failed(self.request, username)
                raise
        login.succeeded(self.request, username)
        return cleaned
