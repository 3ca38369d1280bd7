from django.contrib import admin

from capture.models import CaptureSession
from guard.adminperms import PermittedActionsAdmin


@admin.register(CaptureSession)
class CaptureSessionAdmin(PermittedActionsAdmin):
    list_display = ["id", "tenant", "state", "is_live", "score", "capture", "created_at"]
    list_filter = ["state", "capture"]
    readonly_fields = [f.name for f in CaptureSession._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
