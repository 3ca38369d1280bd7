"""The throttle windows' and the refusals' admins, read only. Registered by the console, which
extends them with the tenant's name where these rows keep its id."""

from typing import Any, ClassVar

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from guard.adminperms import PermittedActionsAdmin
from guard.login import account_subject
from guard.models import ACCOUNT_SCOPE, Counter, Refusal


class CounterAdmin(PermittedActionsAdmin[Counter]):
    """Read-only view of the throttle windows (deleting a row lifts that block). A login
    account's rows hold the username's HMAC (``guard.login.account_subject``): shown by its
    first digits (``Counter.subject_shown``), found by searching the username."""

    list_display = ("scope", "subject_shown", "bucket", "hits")
    list_filter = ("scope",)
    search_fields = ("subject",)

    @admin.display(description="subject", ordering="subject")
    def subject_shown(self, counter: Counter) -> str:
        return counter.subject_shown

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Counter], search_term: str
    ) -> tuple[QuerySet[Counter], bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if username := search_term.strip():
            found |= queryset.filter(scope=ACCOUNT_SCOPE, subject=account_subject(username))
        return found, duplicates

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
