"""/capture/demo: the component wired as an integrator would (operators only; off unless
CAPTURE_DEMO). Opening a session (which then spends the tenant's quota) needs
``add_capturesession``, to view tenants (the page lists them) and to view capture sessions
(``view_capturesession`` or ``change_capturesession``, as for their admin pages), since the
page ends on the session's verdict; reading a verdict needs the last. Other staff get a 403
page that names the permissions they lack. The session is opened and its verdict read on the
server, never by the page."""

import uuid
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from accounts.models import HashId, Tenant
from capture import service
from capture.models import CaptureSession
from guard.viewing import user_may_view
from liveness.answers import LIMIT_REACHED

View = Callable[..., HttpResponse]


class TenantForm(forms.Form):
    tenant = forms.ModelChoiceField(Tenant.objects.filter(is_active=True), empty_label=None)
    lang = forms.ChoiceField(
        label="Language", choices=[("en", "English"), ("fr", "Français")], initial="en"
    )


def demo_enabled(view: View) -> View:
    """``view`` while CAPTURE_DEMO is on; off, every method is the JSON 404 of an unknown
    path. The CSRF check runs after the switch (``csrf_protect``), not before it in the
    middleware, which answered a POST, PUT... to the page switched off 403 with its HTML."""
    protected = csrf_protect(view)

    @csrf_exempt  # by the middleware: ``protected`` checks it once the page is on
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.CAPTURE_DEMO:
            raise Http404
        response = protected(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"  # the page holds a session token
        return response

    return wrapper


def missing_permissions(user: Any) -> list[str]:
    """What ``user`` lacks to run the demo, one permission (or pair) each: ``add_capturesession``;
    the view (or change) permission of tenants, since its select lists every active tenant by
    name (with the first alone, a user who may view no tenant read them all there, as issuing a
    hash_id from a tenant's page also needs to view the tenant); and that of capture sessions,
    since the capture ends on the verdict's page (without it, the session opened and spent a
    unit, then the person met a bare 403)."""
    missing = []
    if not user.has_perm("capture.add_capturesession"):
        missing.append("capture.add_capturesession")
    if not user_may_view(user, Tenant):
        missing.append("accounts.view_tenant (or accounts.change_tenant)")
    if not user_may_view(user, CaptureSession):
        missing.append("capture.view_capturesession (or capture.change_capturesession)")
    return missing


@demo_enabled
@staff_member_required
def demo(request: HttpRequest) -> HttpResponse:
    missing = missing_permissions(request.user)
    if missing:  # checked before any session is opened: no unit is spent
        return render(request, "capture/demo.html", {"missing": missing}, status=403)
    form = TenantForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "capture/demo.html", {"form": form})
    tenant = form.cleaned_data["tenant"]
    # As the integrator's backend call with the tenant's newest hash_id (revoking it ends it).
    credential = HashId.objects.active().filter(tenant=tenant).first()
    if credential is None:
        form.add_error("tenant", "This tenant has no active hash_id: issue one first.")
        return render(request, "capture/demo.html", {"form": form})
    # The quota check of POST /sessions (liveness.jsonapi.within_quota): a session opened for
    # a tenant with no unit left could only have its selfie refused (429).
    if not tenant.has_room():
        form.add_error(
            "tenant",
            f"{LIMIT_REACHED} This tenant has used its {tenant.request_limit} unit(s): "
            "POST /sessions refuses it (429). Raise its limit or reset its quota first.",
        )
        return render(request, "capture/demo.html", {"form": form})
    opened = service.open_session(tenant, credential)
    context = {
        "form": form,
        "opened": opened,
        "lang": form.cleaned_data["lang"],
        "result_url": reverse("capture-demo-result", args=[opened.session.pk]),
    }
    return render(request, "capture/demo.html", context)


def _fields(body: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """The answer's fields, one (dotted key, value as JSON writes it) a row: the demo shows
    the backend's answer field by field rather than as a JSON dump."""
    for key, value in body.items():
        if isinstance(value, dict):
            yield from _fields(value, f"{prefix}{key}.")
        elif value is None:
            yield f"{prefix}{key}", "null"
        else:
            yield f"{prefix}{key}", str(int(value) if isinstance(value, bool) else value)


@demo_enabled
@staff_member_required
def result(request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    """A session's verdict, for a user who may view capture sessions: the console's rule
    (``user_may_view``), by which ``change_capturesession`` alone opens their admin pages."""
    if not user_may_view(request.user, CaptureSession):
        raise PermissionDenied
    session = get_object_or_404(CaptureSession.objects.select_related("tenant"), pk=session_id)
    body = service.describe(session)
    context = {"session": session, "body": body, "fields": list(_fields(body))}
    return render(request, "capture/result.html", context)
