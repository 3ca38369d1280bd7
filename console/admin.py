"""The tenant admin, extended into an operator console: a usage page per tenant."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.admin import TenantAdmin
from accounts.models import Tenant
from console.usage import DAYS, SERIES, daily_usage, usage_svg


class ConsoleTenantAdmin(TenantAdmin):
    """TenantAdmin plus a "usage" link in the list and on the change page."""

    change_form_template = "admin/console/tenant_change_form.html"

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
        return [usage, *super().get_urls()]

    def usage_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.has_view_permission(request, tenant):
            return HttpResponse(status=403)
        days = daily_usage(tenant)
        totals = {name: sum(getattr(d, name) for d in days) for name, _ in SERIES}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tenant,
            "tenant": tenant,
            "title": f"Usage of {tenant.name}",
            "days": DAYS,
            "rows": list(reversed(days)),
            "totals": totals,
            "remaining": "unlimited" if tenant.remaining is None else tenant.remaining,
            # Built from numbers and an escaped title only.
            "chart": mark_safe(usage_svg(days, f"Daily checks of {tenant.name}")),
        }
        return TemplateResponse(request, "admin/console/tenant_usage.html", context)


admin.site.unregister(Tenant)
admin.site.register(Tenant, ConsoleTenantAdmin)
