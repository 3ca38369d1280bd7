"""The operator console's admin site: Django's admin with the product's name in every header
and title, and an index that says what is happening today and what accuracy to expect. Every
URL and URL name stays Django's (``admin:...``); model admins register on it as ``admin.site``
(console.adminconfig makes it the default site)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from console.overview import expected_accuracy, latest_evaluations, overview, recent_changes

PRODUCT = "Liveness service"


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

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        """The overview above the app list, the accuracy to expect, the latest changes."""
        accuracy, provenance = expected_accuracy()
        context = {
            "overview": overview(request.user),
            "accuracy": accuracy,
            "provenance": provenance,
            "evaluations": latest_evaluations()
            if request.user.has_perm("calibration.view_evaluation")
            else None,
            "changes": recent_changes(request.user),
            **(extra_context or {}),
        }
        return super().index(request, context)
