"""The tenant admin, extended into an operator console: a usage page per tenant, a threshold
from a target APCER (the evaluations), calibration from an uploaded zip (the engine)."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django_tasks_db.models import DBTaskResult

from accounts.admin import TENANT_FIELDS, TenantAdmin, number
from accounts.calibrate import CalibrationError, zip_members
from accounts.models import Tenant
from console.forms import CalibrationUploadForm, TenantForm
from console.jobs import HandoffError, describe_job, start_calibration
from console.overview import overview
from console.usage import SERIES, Span, daily_usage, usage_csv, usage_svg

JOBS_SHOWN = 5


def _after(fields: tuple[str, ...], anchor: str, name: str) -> tuple[str, ...]:
    i = fields.index(anchor) + 1
    return (*fields[:i], name, *fields[i:])


class ConsoleTenantAdmin(TenantAdmin):
    """TenantAdmin plus a "usage" link in the list and on the change page, the target APCER
    field and the calibration upload page."""

    change_form_template = "admin/console/tenant_change_form.html"
    form = TenantForm
    fields = _after(TENANT_FIELDS, "threshold", "target_apcer")

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
        calibrate = path(
            "<int:tenant_id>/calibrate/",
            self.admin_site.admin_view(self.calibrate_view),
            name="accounts_tenant_calibrate",
        )
        usage_csv = path(
            "<int:tenant_id>/usage.csv",
            self.admin_site.admin_view(self.usage_csv_view),
            name="accounts_tenant_usage_csv",
        )
        return [usage, usage_csv, calibrate, *super().get_urls()]

    @admin.display(description="calibration")
    def calibration_status(self, tenant: Tenant) -> str:
        summary = super().calibration_status(tenant)
        if tenant.pk is None:
            return summary
        link = format_html(
            '<a id="calibrate-link" href="{}">Calibrate from a zip of labelled captures</a>',
            reverse("admin:accounts_tenant_calibrate", args=[tenant.pk]),
        )
        return format_html("{} {}", summary, link)

    def update_fields(self, form: ModelForm) -> set[str]:
        fields = super().update_fields(form) - {"target_apcer"}
        if getattr(form, "derived", None) is not None:
            fields.add("threshold")
        return fields

    def save_model(self, request: HttpRequest, obj: Tenant, form: ModelForm, change: bool) -> None:
        derived = getattr(form, "derived", None)
        if derived is not None:
            evaluation, threshold, apcer, bpcer = derived
            obj.threshold = threshold
            messages.info(
                request,
                f"Threshold set to {threshold:.4f} from evaluation #{evaluation.pk} "
                f"({evaluation}): APCER {number(apcer, '.2%')} on {evaluation.attacks} attack "
                f"and BPCER {number(bpcer, '.2%')} on {evaluation.bona_fide} bona fide "
                "presentations.",
            )
        super().save_model(request, obj, form, change)

    def construct_change_message(  # type: ignore[override]  # Django takes a string too
        self, request: HttpRequest, form: Form, formsets: Any, add: bool = False
    ) -> str | list[dict[str, Any]]:
        message = super().construct_change_message(request, form, formsets, add)
        derived = getattr(form, "derived", None)
        if derived is None or add:
            return message
        evaluation, threshold, apcer, _ = derived
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

    def calibrate_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """Upload a zip of live/ and spoof/ captures: calibrated by the task worker, in memory,
        never saved; the page lists the tenant's last jobs."""
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.has_change_permission(request, tenant):
            return HttpResponse(status=403)
        form = CalibrationUploadForm()
        if request.method == "POST":
            form = CalibrationUploadForm(request.POST, request.FILES)
            if getattr(request, "upload_too_large", False):
                form.add_error("archive", "The zip is larger than the upload limit.")
            elif form.is_valid():
                done = self._calibrate_from(request, tenant, form)
                if done is not None:
                    return done
        jobs = [describe_job(job) for job in tenant.calibration_jobs.all()[:JOBS_SHOWN]]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tenant,
            "tenant": tenant,
            "title": f"Calibrate {tenant.name}",
            "form": form,
            "status": self.calibration_status(tenant),
            "jobs": jobs,
            # reloaded every few seconds while a job is pending
            "refresh": any(job.state in ("queued", "running") for job in jobs),
        }
        return TemplateResponse(request, "admin/console/tenant_calibrate.html", context)

    def _calibrate_from(
        self, request: HttpRequest, tenant: Tenant, form: CalibrationUploadForm
    ) -> HttpResponse | None:
        """Check the zip's directory (cheap: no member is read), hand it to the task worker and
        queue its job; the page then shows the job's progress and result."""
        target = form.cleaned_data.get("target_apcer")
        upload = form.cleaned_data["archive"]
        try:
            data = upload.read()
            members = zip_members(data)
            job = start_calibration(tenant.pk, data, len(members), target, request.user)
        except (CalibrationError, HandoffError) as exc:
            form.add_error("archive", str(exc))
            return None
        finally:
            upload.close()
        messages.info(
            request,
            f"Calibration job #{job.pk} queued ({job.images} images); this page shows its "
            "progress and result.",
        )
        url = reverse("admin:accounts_tenant_calibrate", args=[tenant.pk])
        return HttpResponseRedirect(url, status=303)


admin.site.unregister(Tenant)
admin.site.register(Tenant, ConsoleTenantAdmin)
# django-tasks-db's own page of raw task rows: jobs are shown, with their permission checks,
# on each tenant's calibration page; the rows themselves are nothing an operator acts on.
admin.site.unregister(DBTaskResult)


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
