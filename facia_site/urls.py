import re
from collections.abc import Iterator, Sequence

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.urls.resolvers import RoutePattern
from django.views.generic import RedirectView

from guard.csp import with_policy
from guard.shortcut import view_on_site
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


# Every page the site serves but the admin's, which must all lie outside ADMIN_URL.
served = [
    path("", include("liveness.urls")),
    path("", include("capture.urls")),
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


def fixed_start(entry: URLPattern | URLResolver) -> tuple[str, bool]:
    """A pattern's fixed text, and whether paths longer than it may match (a converter, a
    regular expression, an include)."""
    if isinstance(entry.pattern, RoutePattern):
        route = str(entry.pattern)
        text, varies = route.split("<", 1)[0], "<" in route
    else:
        regex = entry.pattern.regex.pattern.removeprefix("^")
        text = re.split(r"[^\w/-]", regex, maxsplit=1)[0]
        varies = regex[len(text) :] != "$"
    return text, varies or isinstance(entry, URLResolver)


def served_paths(
    patterns: Sequence[URLPattern | URLResolver], prefix: str = ""
) -> Iterator[tuple[str, bool]]:
    """Each path ``patterns`` serve, without its leading slash: its fixed text, and whether
    longer paths may match."""
    for entry in patterns:
        text, varies = fixed_start(entry)
        if isinstance(entry, URLResolver) and "<" not in str(entry.pattern):
            yield from served_paths(entry.url_patterns, prefix + text)
        else:
            yield prefix + text, varies


def overlaps(admin_url: str, served: str, varies: bool) -> bool:
    """Whether the admin's paths (all under ``admin_url``, which ends in a slash) and
    ``served``'s meet: ``served`` (as a folder) lies under the admin's, or the admin's under
    one that ``served`` may match. ``liveness/`` counts for ``/liveness``: the two would read
    as one page."""
    folder = served if served.endswith("/") or varies else f"{served}/"
    return folder.startswith(admin_url) or (varies and admin_url.startswith(served))


def check_admin_url(admin_url: str, patterns: Sequence[URLPattern | URLResolver]) -> None:
    """Stop the start when the admin would take over a page the site serves, or the reverse:
    ADMIN_URL=api/ answered /api/schema/, /api/docs/ and /api/redoc/ 302 to the admin's login,
    and ADMIN_URL=static/ hid the static files (WhiteNoise serves STATIC_URL, outside the
    URLconf)."""
    paths = [*served_paths(patterns), (settings.STATIC_URL.lstrip("/"), True)]
    taken = sorted(
        {
            f"/{text}{'...' if varies else ''}"
            for text, varies in paths
            if overlaps(admin_url, text, varies)
        }
    )
    if taken:
        raise ImproperlyConfigured(
            f"ADMIN_URL={admin_url!r}: overlaps {', '.join(taken)}, which the service serves; "
            "choose a path of its own, e.g. ops-7f3a9/"
        )


check_admin_url(settings.ADMIN_URL, served)
urlpatterns = [
    *(moved(old, new) for old, new in MOVED_ADMIN_PAGES.items()),
    *served,
    # Before the admin's own route of this address (which its links still reverse to): the
    # shortcut, guarded (guard.shortcut.view_on_site). Every content type id it may be given:
    # the admin's route takes any (<path:>) and int()s it, so "+17" or "١٧" passed an <int:>
    # route by and reached Django's unguarded view.
    path(
        f"{settings.ADMIN_URL}r/<path:content_type_id>/<path:object_id>/",
        admin.site.admin_view(view_on_site),
    ),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "liveness.jsonapi.bad_request"
handler404 = "liveness.jsonapi.not_found"
handler500 = "liveness.jsonapi.server_error"
