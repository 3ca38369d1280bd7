"""The tenant admin, extended into an operator console: a usage page per tenant (counted from
the check records and refusals: it needs their view permissions) and a threshold from a target
APCER (the evaluations)."""

from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.admin import fields_after
from accounts.models import Tenant
from calibration.admin import CalibratedTenantAdmin, may_view
from calibration.models import Calibration, Evaluation
from calibration.pages import number
from console import history
from console.forms import TenantForm
from console.usage import SERIES, Span, daily_usage, usage_csv, usage_svg
from guard import formatting
from guard.admin import CounterAdmin, RefusalAdmin
from guard.models import Counter, Refusal
from guard.throttle import RATE_SCOPE
from liveness.models import LivenessCheck


def reads_usage(request: HttpRequest) -> bool:
    """The usage page counts check records and refusals: it needs both view permissions."""
    return may_view(request, LivenessCheck) and may_view(request, Refusal)


def reads_evaluations(request: HttpRequest) -> bool:
    """Whether ``request``'s user may see the evaluations a target APCER is derived from."""
    return may_view(request, Evaluation)


class ConsoleTenantAdmin(CalibratedTenantAdmin):
    """The calibrated tenant admin plus a "usage" link in the list and on the change page and
    the target APCER field."""

    change_form_template = "admin/console/tenant_change_form.html"
    form = TenantForm
    fields = fields_after(CalibratedTenantAdmin.fields, "threshold", "target_apcer")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        return fields if reads_evaluations(request) else [f for f in fields if f != "target_apcer"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """Without ``view_evaluation`` no target APCER: a declared field stays in the form
        whatever its fields say, so the change form took one posted and set the threshold
        from an evaluation its user may not see, naming its folder and figures."""
        form = super().get_form(request, obj, change=change, **kwargs)
        shown: dict[str, Any] = {"shows_calibration": may_view(request, Calibration)}
        if not reads_evaluations(request):
            shown["target_apcer"] = None
        return type(form.__name__, (form,), shown)

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        usage = ("usage_link",) if reads_usage(request) else ()
        return (*super().get_list_display(request), *usage)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The "Usage chart" link only for a user who may open the page."""
        shown = {"may_read_usage": reads_usage(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, shown)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Each entry as the user may read it (console.history)."""
        response = super().history_view(request, object_id, extra_context)
        entries = getattr(response, "context_data", None) or {}
        if entries.get("action_list") is not None:
            history.shown(entries["action_list"], request.user)
        return response

    def may_read_usage(self, request: HttpRequest, tenant: Tenant) -> bool:
        return self.has_view_permission(request, tenant) and reads_usage(request)

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

    def update_fields(self, form: ModelForm[Tenant]) -> set[str]:
        fields = super().update_fields(form) - {"target_apcer"}
        if getattr(form, "derived", None) is not None:
            fields.add("threshold")
        return fields

    def save_model(
        self, request: HttpRequest, obj: Tenant, form: ModelForm[Tenant], change: bool
    ) -> None:
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
                f"Threshold set to {threshold:.4f} from evaluation {evaluation.described()}; "
                f"{figures}.",
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
        before = round(before, formatting.SCORE_PLACES) if isinstance(before, float) else before
        said = f" {message}" if isinstance(message, str) else ""
        return (
            f"Changed threshold {before} → {threshold:.4f} from target APCER "
            f"{form.cleaned_data['target_apcer']}% on evaluation #{evaluation.pk}.{said}"
        )

    def usage_tenant(self, request: HttpRequest, tenant_id: int) -> Tenant:
        """The tenant of a usage page or CSV: 403 before saying whether it exists (looked up
        first, a 404 for a missing id and a 403 for an existing one would tell anyone on the
        staff which ids exist)."""
        if not (self.has_view_permission(request) and reads_usage(request)):
            raise PermissionDenied
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.may_read_usage(request, tenant):
            raise PermissionDenied
        return tenant

    def usage_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        tenant = self.usage_tenant(request, tenant_id)
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
            # Built from numbers and an escaped title only.
            "chart": mark_safe(usage_svg(days, f"Daily checks of {tenant.name}")),
        }
        return TemplateResponse(request, "admin/console/tenant_usage.html", context)

    def usage_csv_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """The usage table of the page's date range as CSV (one row per day, zeros too)."""
        tenant = self.usage_tenant(request, tenant_id)
        span = Span.from_query(request.GET)
        response = HttpResponse(
            usage_csv(daily_usage(tenant, span)), content_type="text/csv; charset=utf-8"
        )
        name = f"usage-{tenant.pk}-{span.first:%Y%m%d}-{span.last:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class RefusalTenantFilter(admin.SimpleListFilter):
    """By tenant name (the rows keep a tenant id: guard sits below the tenants)."""

    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        ids = Refusal.objects.values_list("tenant_id", flat=True).distinct()
        named = Tenant.objects.filter(pk__in=ids).order_by("name").values_list("pk", "name")
        return [("0", "No known tenant"), *((str(pk), name) for pk, name in named)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Refusal]) -> QuerySet[Refusal]:
        value = self.value() or ""
        # ASCII digits only: str.isdigit() takes "²" (int() then raised: a 500) and "١".
        named = value.isascii() and value.isdigit()
        if named and len(value.lstrip("0")) > 19:  # no tenant id; int() of 4,301 digits: a 500
            return queryset.none()
        # leading zeros count towards int()'s 4,300-digit limit too
        return queryset.filter(tenant_id=int(value.lstrip("0") or "0")) if named else queryset


class NamedRefusalAdmin(RefusalAdmin):
    """The refusals with the tenant's name where guard's own admin has its id."""

    list_display = ("day", "status", "code", "tenant_name", "client", "hits_shown")
    list_filter = ("status", "code", RefusalTenantFilter, "day")
    fields = ("day", "status", "code", "tenant_name", "client", "hits_shown")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refusal]:
        name = Tenant.objects.filter(pk=OuterRef("tenant_id")).values("name")[:1]
        return super().get_queryset(request).annotate(tenant_name_=Subquery(name))

    @admin.display(description="tenant", ordering="tenant_name_")
    def tenant_name(self, refusal: Refusal) -> str:
        if not refusal.tenant_id:
            return "no known tenant"
        name = getattr(refusal, "tenant_name_", None)
        return name or f"deleted tenant #{refusal.tenant_id}"

    @admin.display(description="answers", ordering="hits")
    def hits_shown(self, refusal: Refusal) -> str:
        return formatting.count(refusal.hits)


class NamedCounterAdmin(CounterAdmin):
    """Throttle windows as people read them: the tenant's name for a tenant's rate, the
    window's start as a UTC time."""

    list_display = ("scope", "subject_shown", "window", "hits")
    fields = ("scope", "subject_shown", "window", "hits")
    readonly_fields = fields

    @admin.display(description="subject", ordering="subject")
    def subject_shown(self, counter: Counter) -> str:
        if counter.scope == RATE_SCOPE and counter.subject.isdigit():
            tenant = Tenant.objects.filter(pk=int(counter.subject)).first()
            return tenant.name if tenant else f"deleted tenant #{counter.subject}"
        return super().subject_shown(counter)

    @admin.display(description="window from (UTC)", ordering="bucket")
    def window(self, counter: Counter) -> str:
        return f"{datetime.fromtimestamp(counter.bucket, UTC):%Y-%m-%d %H:%M:%S}"


# Registered here only, at the top of the layering, each extending the admins of the apps
# below: which class the site serves does not depend on the order of INSTALLED_APPS.
admin.site.register(Tenant, ConsoleTenantAdmin)
admin.site.register(Refusal, NamedRefusalAdmin)
admin.site.register(Counter, NamedCounterAdmin)
