"""Content-Security-Policy on every HTML page the service serves: defence in depth against
XSS where the admin shows a new hash_id once and the capture demo holds a session token.

``settings.SECURE_CSP`` (Django 6.0's setting, in its shape: directive -> sources) is the policy
of every ``text/html`` answer, error pages included; a view may answer with a policy of its own
(the API docs: ``with_policy``). JSON answers, the API's, carry none: a page is what a policy
protects, and every header of the API is declared in its schema.

Ours rather than django-csp: its middleware puts the header on every answer (the JSON API's
included, undeclared), which would take a list of excluded paths to keep in step with the URLs;
and Django 6.0 brings its own (``django.middleware.csp``), which this one gives way to then."""

from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
# A view's own policy, on its response (a DRF page has no Content-Type before it is rendered,
# after the view returns: the middleware, which sees it rendered, decides).
_OWN_POLICY = "_csp_header"
Policy = Mapping[str, Sequence[str]]


def build(policy: Policy) -> str:
    return "; ".join(" ".join((directive, *sources)) for directive, sources in policy.items())


def is_html(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").partition(";")[0].strip().lower() == "text/html"


def is_page(response: HttpResponse) -> bool:
    """An HTML answer with a body: an empty one (a redirect, Django's default type) is no
    page."""
    return is_html(response) and (response.streaming or bool(response.content))


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = build(settings.SECURE_CSP)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # DEBUG's technical 404 and 500 pages are inline styles and scripts (as django-csp).
        debug_page = settings.DEBUG and response.status_code in (404, 500)
        if HEADER not in response and is_page(response) and not debug_page:
            response[HEADER] = getattr(response, _OWN_POLICY, self.header)
        return response


def with_policy(view: Callable[..., HttpResponse], **changes: Sequence[str]) -> Any:
    """``view`` answering with ``SECURE_CSP`` changed by ``changes`` (``style_src=[...]`` for
    ``style-src``), in place of the site's policy."""
    policy: dict[str, Sequence[str]] = {**settings.SECURE_CSP}
    policy.update({name.replace("_", "-"): sources for name, sources in changes.items()})
    header = build(policy)

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        setattr(response, _OWN_POLICY, header)
        return response

    return wrapped
