"""Capture sessions, read only; the score to 4 places, the exact one in its title."""

from typing import ClassVar

from django.contrib import admin
from django.utils.safestring import SafeString

from capture.models import CaptureSession
from guard import formatting
from guard.adminperms import PermittedActionsAdmin


@admin.register(CaptureSession)
class CaptureSessionAdmin(PermittedActionsAdmin[CaptureSession]):
    list_display = ["id", "tenant", "state", "is_live", "score_shown", "capture", "created_at"]
    list_filter = ["state", "capture"]
    # An erasure request names a request id (X-Request-ID): the session that copied that
    # selfie's verdict is found by it, as its check record is on the checks' list.
    search_fields = ["selfie_request_id"]
    fields: ClassVar[tuple[str, ...]] = tuple(
        f.name if f.name != "score" else "score_shown" for f in CaptureSession._meta.fields
    )
    readonly_fields = fields

    @admin.display(description="score", ordering="score")
    def score_shown(self, session: CaptureSession) -> SafeString | str:
        if session.score is None:
            return formatting.MISSING
        return formatting.with_exact(formatting.decimal(session.score), session.score)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
