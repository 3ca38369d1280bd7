"""The page of a form refused by Django's CSRF check (403), in the console's look.

Django's own page holds an inline ``<style>``, which the site's Content-Security-Policy
(guard.csp) refuses: an operator whose session or CSRF cookie had expired saw it unstyled,
with a developer's wording. This one says what happened and what to do, from static files
only (settings.CSRF_FAILURE_VIEW)."""

from urllib.parse import urlsplit

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

# The tenant's buttons that answer POST only (a GET of their address is an empty 405): the
# refused form's page is the one the button was on (the Referer, same-origin by the site's
# Referrer-Policy), else the tenant's change page.
POST_ONLY = {
    "admin:accounts_tenant_issue",
    "admin:accounts_tenant_revoke",
    "admin:accounts_tenant_reset_quota",
    "admin:accounts_tenant_shadow",
}


def page_of_form(request: HttpRequest) -> str:
    """A page that answers GET for the refused form: its own address, except for sign out
    (the console's index) and a POST-only button (the page it was on, or its tenant's page)."""
    if request.path == reverse("admin:logout"):  # a POST only: a GET answers 405
        return reverse("admin:index")
    try:
        match = resolve(request.path)
    except Resolver404:
        return request.path
    if match.view_name not in POST_ONLY:
        return request.path
    referer = str(request.META.get("HTTP_REFERER", ""))
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        # Its path and query only: the link stays on this host whatever the header said.
        parts = urlsplit(referer)
        came_from = parts.path + (f"?{parts.query}" if parts.query else "")
        if came_from != request.path and came_from[:1] == "/" and came_from[1:2] not in "/\\":
            return came_from
    return reverse("admin:accounts_tenant_change", args=[int(match.kwargs["tenant_id"])])


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403: the form was not acted on; signed in, open it again, else sign in again (back to
    the page of the form)."""
    signed_in = admin.site.has_permission(request)
    page = page_of_form(request)
    login = reverse("admin:login") + "?" + urlencode({"next": page})
    context = {
        **admin.site.each_context(request),
        "title": "Form not accepted",
        "signed_in": signed_in,
        "again_url": page if signed_in else login,
        "no_cookie": reason == REASON_NO_CSRF_COOKIE,
    }
    return render(request, "admin/console/csrf_failure.html", context, status=403)
