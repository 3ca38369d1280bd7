"""The throttle windows' and the refusals' admins, read only. Registered by the console, which
extends them with the tenant's name where these rows keep its id."""

from typing import Any, ClassVar

from django.http import HttpRequest

from guard.adminperms import PermittedActionsAdmin
from guard.models import Counter, Refusal


class CounterAdmin(PermittedActionsAdmin[Counter]):
    """Read-only view of the throttle windows (deleting a row lifts that block)."""

    list_display = ("scope", "subject", "bucket", "hits")
    list_filter = ("scope",)
    search_fields = ("subject",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Counter | None = None) -> bool:
        return False


class RefusalAdmin(PermittedActionsAdmin[Refusal]):
    """401 and 429 answers of /liveness per day, per tenant or client address bucket."""

    list_display = ("day", "status", "code", "tenant_id", "client", "hits")
    list_filter: ClassVar[tuple[Any, ...]] = ("status", "code", "day")
    search_fields = ("client",)
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Refusal | None = None) -> bool:
        return False
