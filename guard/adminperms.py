"""Admin actions answer 403 to a user they are not offered to.

Django offers a user only the actions whose ``permissions`` they hold, but a POST naming one
they are not offered gets the change list back ("No action selected"), not a refusal. Every
model admin of the project derives from :class:`PermittedActionsAdmin`, so such a POST is
refused as plainly as a change form a viewer may not save.
"""

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class PermittedActionsAdmin(admin.ModelAdmin):
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST" and self.refused_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def refused_actions(self, request: HttpRequest) -> set[str]:
        """The actions this POST names that exist but that this user may not run."""
        # Django's list of this admin's actions before it filters them by permission.
        known = {name for _, name, _ in self._get_base_actions()}  # type: ignore[attr-defined]
        named = set(request.POST.getlist("action")) & known
        return named - set(self.get_actions(request))
