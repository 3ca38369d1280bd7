"""The only upload handler: uploaded files stay in memory (never spooled to a temporary file as
Django's default handlers do above 2.5 MB), only for a user who may calibrate, and at most
``UPLOAD_MAX_BYTES`` of them per request. The admin's calibration zip is the one form that takes
a file; Django parses a multipart body wherever a form is read (the login page, the CSRF check
of any POST) before a view checks anything, so without these bounds anyone could make a worker
hold up to 100 files (``DATA_UPLOAD_MAX_NUMBER_FILES``) of that size each."""

from __future__ import annotations

from importlib import import_module
from io import BytesIO
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopFutureHandlers
from django.db import DatabaseError
from django.http import HttpRequest
from django.http.cookie import parse_cookie

from calibration.models import Calibration
from guard.viewing import user_may_view

# What the calibration zip's page needs (calibration.admin: the tenant's change permission, and
# may view the calibrations the page shows: their view or change permission, as their list).
UPLOAD_PERMISSION = "accounts.change_tenant"


def may_upload(request: Any) -> bool:
    """Whether ``request``'s user (active staff, as the admin requires) may calibrate."""
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return False
    return bool(user.has_perm(UPLOAD_PERMISSION)) and user_may_view(user, Calibration)


def cookies_may_upload(cookie_header: str) -> bool | None:
    """Whether the admin session a request's ``Cookie`` header names is of a user who may
    calibrate, asked before its body is read (``facia_site.worker``): only such a user's
    admin request may be as large as the calibration zip. False without a live session; None
    when the database cannot say."""
    key = parse_cookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return False
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    try:
        request.user = get_user(request)
        return may_upload(request)
    except DatabaseError:
        return None


class BoundedMemoryUploadHandler(FileUploadHandler):
    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit: int = settings.UPLOAD_MAX_BYTES
        self.buffer = BytesIO()
        self.held = 0  # bytes of this request's files already complete
        self.allowed: bool | None = None  # decided at the first file

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = BytesIO()
        if self.allowed is None:
            self.allowed = may_upload(self.request)
        if not self.allowed:
            raise SkipFile()
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self.held + start + len(raw_data) > self.limit:
            if self.request is not None:
                setattr(self.request, "upload_too_large", True)  # noqa: B010 (read by the admin view)
            self.buffer = BytesIO()
            raise SkipFile()
        self.buffer.write(raw_data)

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.held += file_size
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )
