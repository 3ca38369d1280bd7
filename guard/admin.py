from django.contrib import admin
from django.http import HttpRequest

from guard.models import Counter


@admin.register(Counter)
class CounterAdmin(admin.ModelAdmin):
    """Read-only view of the throttle windows (deleting a row lifts that block)."""

    list_display = ("scope", "subject", "bucket", "hits")
    list_filter = ("scope",)
    search_fields = ("subject",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Counter | None = None) -> bool:
        return False
