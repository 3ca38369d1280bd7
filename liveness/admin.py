"""Checks, read only: one row each, figures for people (score to 4 places, latency in ms) with
the exact stored values in their titles; a narrow list, so the request id fits 1280 px."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from guard import formatting
from guard.adminperms import TENANTS_OF_ITS_ROWS, FixedChoicesFilter, PermittedActionsAdmin
from liveness.models import LivenessCheck
from ml.quality import REFUSALS


class VerdictFilter(admin.SimpleListFilter):
    """Live, spoof, or refused by a quality gate (the three outcomes of a recorded check)."""

    title = "verdict"
    parameter_name = "verdict"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("spoof", "Spoof"), ("refused", "Refused by a gate (422)")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[LivenessCheck]
    ) -> QuerySet[LivenessCheck]:
        where = {
            "live": {"is_live": True},
            "spoof": {"is_live": False},
            "refused": {"is_live__isnull": True},
        }
        chosen = where.get(self.value() or "")
        return queryset.filter(**chosen) if chosen else queryset


class RefusedCodeFilter(FixedChoicesFilter):
    title = "refused code"
    parameter_name = "refused_code"
    values = tuple((code, code) for code in sorted(REFUSALS))


class CaptureFilter(FixedChoicesFilter):
    title = "capture"
    parameter_name = "capture"
    values = (("frame", "frame"), ("crop", "crop"))


@admin.register(LivenessCheck)
class LivenessCheckAdmin(PermittedActionsAdmin[LivenessCheck]):
    list_display = (
        "time",
        "tenant",
        "verdict",
        "score_shown",
        "capture",
        "latency",
        "request_id",
    )
    list_filter = (VerdictFilter, RefusedCodeFilter, CaptureFilter, TENANTS_OF_ITS_ROWS)
    list_select_related = ("tenant",)
    search_fields = ("request_id", "tenant__name")
    date_hierarchy = "created_at"
    fields = (
        "tenant",
        "created_at",
        "verdict",
        "score_shown",
        "capture",
        "latency",
        "request_id",
    )
    readonly_fields = fields

    @admin.display(description="time (UTC)", ordering="created_at")
    def time(self, check: LivenessCheck) -> str:
        return f"{check.created_at:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="verdict", ordering="is_live")
    def verdict(self, check: LivenessCheck) -> SafeString:
        if check.refused_code:
            return format_html(
                '<span class="verdict-refused" title="HTTP 422">refused: {}</span>',
                check.refused_code,
            )
        kind = "live" if check.is_live else "spoof"
        return format_html('<span class="verdict-{}">{}</span>', kind, kind)

    @admin.display(description="score", ordering="score")
    def score_shown(self, check: LivenessCheck) -> SafeString | str:
        if check.score is None:
            return formatting.MISSING
        return formatting.with_exact(formatting.decimal(check.score), check.score)

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, check: LivenessCheck) -> SafeString:
        return formatting.with_exact(formatting.latency_ms(check.latency_ms), check.latency_ms)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
