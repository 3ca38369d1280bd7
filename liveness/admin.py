from django.contrib import admin
from django.http import HttpRequest

from liveness.models import Evaluation, LivenessCheck


@admin.register(LivenessCheck)
class LivenessCheckAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "tenant",
        "is_live",
        "score",
        "refused_code",
        "latency_ms",
        "request_id",
    )
    list_filter = ("is_live", "refused_code", "tenant")
    search_fields = ("request_id", "tenant__name")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LivenessCheck | None = None) -> bool:
        return False


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "profile", "folder", "bona_fide", "attacks", "auc", "threshold")
    list_filter = ("profile",)
    readonly_fields = [f.name for f in Evaluation._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # evaluations come from `manage.py evaluate`
