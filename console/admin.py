"""The tenant admin, extended into an operator console: a usage page per tenant and a threshold
from a target APCER (the evaluations)."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.admin import fields_after
from accounts.models import Tenant
from calibration.admin import CalibratedTenantAdmin, number
from console.forms import TenantForm
from console.overview import overview
from console.usage import SERIES, Span, daily_usage, usage_csv, usage_svg


class ConsoleTenantAdmin(CalibratedTenantAdmin):
    """The calibrated tenant admin plus a "usage" link in the list and on the change page and
    the target APCER field."""

    change_form_template = "admin/console/tenant_change_form.html"
    form = TenantForm
    fields = fields_after(CalibratedTenantAdmin.fields, "threshold", "target_apcer")

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        return (*super().get_list_display(request), "usage_link")

    @admin.display(description="usage")
    def usage_link(self, tenant: Tenant) -> str:
        url = reverse("admin:accounts_tenant_usage", args=[tenant.pk])
        return format_html('<a href="{}">chart</a>', url)

    def get_urls(self) -> list[URLPattern]:
        usage = path(
            "<int:tenant_id>/usage/",
            self.admin_site.admin_view(self.usage_view),
            name="accounts_tenant_usage",
        )
        usage_csv = path(
            "<int:tenant_id>/usage.csv",
            self.admin_site.admin_view(self.usage_csv_view),
            name="accounts_tenant_usage_csv",
        )
        return [usage, usage_csv, *super().get_urls()]

    def update_fields(self, form: ModelForm) -> set[str]:
        fields = super().update_fields(form) - {"target_apcer"}
        if getattr(form, "derived", None) is not None:
            fields.add("threshold")
        return fields

    def save_model(self, request: HttpRequest, obj: Tenant, form: ModelForm, change: bool) -> None:
        derived = getattr(form, "derived", None)
        if derived is not None:
            evaluation, threshold, held = derived
            obj.threshold = threshold
            # Chosen on the evaluation's images: only figures of sources it was not chosen on.
            figures = held["note"] or (
                f"on the sources it was not chosen on (leave one source out, {held['folds']} "
                f"of {held['sources']} sources judged), APCER {number(held['APCER'], '.2%')} "
                f"and BPCER {number(held['BPCER'], '.2%')}"
            )
            messages.info(
                request,
                f"Threshold set to {threshold:.4f} from evaluation #{evaluation.pk} "
                f"({evaluation}); {figures}.",
            )
        super().save_model(request, obj, form, change)

    def construct_change_message(  # type: ignore[override]  # Django takes a string too
        self, request: HttpRequest, form: Form, formsets: Any, add: bool = False
    ) -> str | list[dict[str, Any]]:
        message = super().construct_change_message(request, form, formsets, add)
        derived = getattr(form, "derived", None)
        if derived is None or add:
            return message
        evaluation, threshold, _ = derived
        before = form.initial.get("threshold")
        said = f" {message}" if isinstance(message, str) else ""
        return (
            f"Changed threshold {before} → {threshold:.4f} from target APCER "
            f"{form.cleaned_data['target_apcer']}% on evaluation #{evaluation.pk}.{said}"
        )

    def usage_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.has_view_permission(request, tenant):
            return HttpResponse(status=403)
        span = Span.from_query(request.GET)
        days = daily_usage(tenant, span)
        names = [name for name, _ in SERIES] + ["unauthorized", "throttled"]
        totals = {name: sum(getattr(d, name) for d in days) for name in names}
        query = f"?from={span.first:%Y-%m-%d}&to={span.last:%Y-%m-%d}"
        csv_url = reverse("admin:accounts_tenant_usage_csv", args=[tenant.pk]) + query
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tenant,
            "tenant": tenant,
            "title": f"Usage of {tenant.name}",
            "span": span,
            "days": len(days),
            "csv_url": csv_url,
            "rows": list(reversed(days)),
            "totals": totals,
            "remaining": "unlimited" if tenant.remaining is None else tenant.remaining,
            # Built from numbers and an escaped title only.
            "chart": mark_safe(usage_svg(days, f"Daily checks of {tenant.name}")),
        }
        return TemplateResponse(request, "admin/console/tenant_usage.html", context)

    def usage_csv_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """The usage table of the page's date range as CSV (one row per day, zeros too)."""
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.has_view_permission(request, tenant):
            return HttpResponse(status=403)
        span = Span.from_query(request.GET)
        response = HttpResponse(
            usage_csv(daily_usage(tenant, span)), content_type="text/csv; charset=utf-8"
        )
        name = f"usage-{tenant.pk}-{span.first:%Y%m%d}-{span.last:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


admin.site.unregister(Tenant)
admin.site.register(Tenant, ConsoleTenantAdmin)


def index(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
    """The admin index with the console's overview above the app list."""
    context = {"overview": overview(request.user), **(extra_context or {})}
    return AdminSite.index(admin.site, request, context)


admin.site.index = index  # type: ignore[method-assign]  # the default site, one view more
admin.site.index_template = "admin/console/index.html"
# The site has no public pages: "View site" would lead to a JSON 404.
admin.site.site_url = None
# The app list is on the index and in the breadcrumbs; its sidebar took 300 of 1280 px from the
# tenant list's columns.
admin.site.enable_nav_sidebar = False
