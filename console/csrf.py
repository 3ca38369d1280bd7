"""The page of a form refused by Django's CSRF check (403), in the console's look.

Django's own page holds an inline ``<style>``, which the site's Content-Security-Policy
(guard.csp) refuses: an operator whose session or CSRF cookie had expired saw it unstyled,
with a developer's wording. This one says what happened and what to do, from static files
only (settings.CSRF_FAILURE_VIEW)."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403: the form was not acted on; signed in, open it again, else sign in again (back to
    the page of the form)."""
    signed_in = admin.site.has_permission(request)
    # Sign out is a POST only: a GET of its address answers 405.
    page = reverse("admin:index") if request.path == reverse("admin:logout") else request.path
    login = reverse("admin:login") + "?" + urlencode({"next": page})
    context = {
        **admin.site.each_context(request),
        "title": "Form not accepted",
        "signed_in": signed_in,
        "again_url": page if signed_in else login,
        "no_cookie": reason == REASON_NO_CSRF_COOKIE,
    }
    return render(request, "admin/console/csrf_failure.html", context, status=403)
