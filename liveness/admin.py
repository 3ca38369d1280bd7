"""Checks, read only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from guard.adminperms import PermittedActionsAdmin
from liveness.models import LivenessCheck


@admin.register(LivenessCheck)
class LivenessCheckAdmin(PermittedActionsAdmin):
    list_display = (
        "created_at",
        "tenant",
        "is_live",
        "rounded_score",
        "refused_code",
        "latency_ms",
        "request_id",
    )
    list_filter = ("is_live", "refused_code", "tenant")
    search_fields = ("request_id", "tenant__name")
    date_hierarchy = "created_at"

    @admin.display(description="score", ordering="score")
    def rounded_score(self, check: LivenessCheck) -> str:
        return "-" if check.score is None else f"{check.score:.3f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
