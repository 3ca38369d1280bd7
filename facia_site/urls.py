import re

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, include, path, re_path
from django.views.generic import RedirectView

from guard.csp import with_policy
from liveness.jsonapi import safe_methods_only
from liveness.schema import RedocView, SchemaView, SwaggerView
from telemetry.views import metrics

# Calibrations and evaluations were pages of accounts and liveness before the calibration app
# took them over: a link kept from then still leads to the page.
MOVED_ADMIN_PAGES = {
    "accounts/calibration/": "calibration/calibration/",
    "liveness/evaluation/": "calibration/evaluation/",
}


def moved(old: str, new: str) -> URLPattern:
    target = f"/{settings.ADMIN_URL}{new}%(rest)s"
    view = RedirectView.as_view(url=target, permanent=True, query_string=True)
    return re_path(rf"^{re.escape(settings.ADMIN_URL + old)}(?P<rest>.*)$", view)


urlpatterns = [
    *(moved(old, new) for old, new in MOVED_ADMIN_PAGES.items()),
    path("", include("liveness.urls")),
    path("", include("capture.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
    # telemetry sits below liveness: the site, above both, gives /metrics the JSON 405 every
    # endpoint answers (Django's require_safe answers POST, PUT, DELETE... empty text/html).
    path("metrics", safe_methods_only(metrics), name="metrics"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # Swagger UI under the site's policy: its init script from the view (?script), not inline.
    path(
        "api/docs/",
        SwaggerView.as_view(url_name="schema", template_name="liveness/swagger_ui.html"),
        name="swagger-ui",
    ),
    # Redoc's bundle injects its styles (styled-components) and runs its search in a worker
    # from a blob: URL; it runs no inline script.
    path(
        "api/redoc/",
        with_policy(
            RedocView.as_view(url_name="schema", template_name="liveness/redoc.html"),
            style_src=["'self'", "'unsafe-inline'"],
            worker_src=["blob:"],
        ),
        name="redoc",
    ),
]

handler400 = "liveness.jsonapi.bad_request"
handler404 = "liveness.jsonapi.not_found"
handler500 = "liveness.jsonapi.server_error"
