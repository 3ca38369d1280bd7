"""The operator console's admin site: Django's admin with the product's name in every header
and title, and an index that says what is happening today and what accuracy to expect. Every
URL and URL name stays Django's (``admin:...``); model admins register on it as ``admin.site``
(console.adminconfig makes it the default site)."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import BadRequest
from django.db.models import Model
from django.http import HttpRequest, QueryDict
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse

from calibration.models import Evaluation
from console.overview import expected_accuracy, latest_evaluations, overview, recent_changes
from guard.forms import ThrottledPasswordChangeForm

PRODUCT = "Liveness service"
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def holds_nul(query: QueryDict) -> bool:
    """Whether a key or value of ``query`` holds a NUL, which PostgreSQL refuses in a string."""
    return any("\x00" in key + "".join(values) for key, values in query.lists())


class ThrottledPasswordChange(PasswordChangeView):
    """Django's password change view, its form told the request (the client's address)."""

    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


class ConsoleSite(admin.AdminSite):
    site_header = f"{PRODUCT} · operator console"
    site_title = f"{PRODUCT} console"
    index_title = "Today at a glance"
    index_template = "admin/console/index.html"
    # The site has no public pages: "View site" would lead to a JSON 404.
    site_url = None
    # The app list is on the index and in the breadcrumbs; its sidebar took 300 of 1280 px
    # from the tenant list's columns.
    enable_nav_sidebar = False

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        """Every admin page (Django's and ours) answers 400 to a query string with a NUL, once
        the user may see the admin: a list filter or an autocomplete term holding one would reach
        PostgreSQL, a 500 (psycopg refuses it) to any staff user who may view the list."""

        @wraps(view)
        def readable(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if holds_nul(request.GET):
                raise BadRequest("A NUL character in the query string.")
            return view(request, *args, **kwargs)

        return super().admin_view(cast(View, readable), cacheable)

    def password_change(  # type: ignore[override]  # a saved form answers a redirect
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        """Django's, with the login throttle around the old password's check (Django's
        admin names its form in the method, with no attribute to replace it by)."""
        request.current_app = self.name
        view = ThrottledPasswordChange.as_view(
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )
        return view(request)

    def may_view(self, request: HttpRequest, model: type[Model]) -> bool:
        """Whether ``request``'s user may open ``model``'s list: its admin's own rule (view or
        change, as Django's ``has_view_permission``). The index checked the view permission
        alone, so a user holding ``change_tenant`` only edited every tenant yet was not shown
        the tenants at or near their limit."""
        model_admin = self._registry.get(model)
        return model_admin is not None and model_admin.has_view_permission(request)

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        """The overview above the app list, the accuracy to expect, the latest changes."""
        accuracy, provenance = expected_accuracy()

        def may_view(model: type[Model]) -> bool:
            return self.may_view(request, model)

        context = {
            "overview": overview(may_view),
            "accuracy": accuracy,
            "provenance": provenance,
            "evaluations": latest_evaluations() if may_view(Evaluation) else None,
            "changes": recent_changes(request.user),
            **(extra_context or {}),
        }
        return super().index(request, context)
