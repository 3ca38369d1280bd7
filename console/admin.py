"""The tenant admin, extended into an operator console: a usage page per tenant, a threshold
from a target APCER (the evaluations), calibration from an uploaded zip (the engine)."""

from django.contrib import admin, messages
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.admin import TENANT_FIELDS, TenantAdmin
from accounts.calibrate import CalibrationError, fit_and_store, score, warnings_for, zip_images
from accounts.models import Tenant
from console.forms import CalibrationUploadForm, TenantForm
from console.usage import DAYS, SERIES, daily_usage, usage_svg
from liveness.runtime import get_engine
from ml.errors import ModelInstallError


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
        return [usage, calibrate, *super().get_urls()]

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
                f"({evaluation}): APCER {apcer:.2%} on {evaluation.attacks} attack and "
                f"BPCER {bpcer:.2%} on {evaluation.bona_fide} bona fide presentations.",
            )
        super().save_model(request, obj, form, change)

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

    def calibrate_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """Upload a zip of live/ and spoof/ captures; scored in memory, never saved."""
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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tenant,
            "tenant": tenant,
            "title": f"Calibrate {tenant.name}",
            "form": form,
            "status": self.calibration_status(tenant),
        }
        return TemplateResponse(request, "admin/console/tenant_calibrate.html", context)

    def _calibrate_from(
        self, request: HttpRequest, tenant: Tenant, form: CalibrationUploadForm
    ) -> HttpResponse | None:
        target = form.cleaned_data.get("target_apcer")
        upload = form.cleaned_data["archive"]
        try:
            scored = score(get_engine(), tenant, zip_images(upload.read()))
            stored, _ = fit_and_store(
                tenant,
                scored,
                None if target is None else target / 100,
                request.user.get_username(),
                "admin upload",
            )
        except CalibrationError as exc:
            form.add_error("archive", str(exc))
            return None
        except ModelInstallError:
            form.add_error(None, "The models are not installed on this server.")
            return None
        finally:
            upload.close()
        for warning in warnings_for(scored):
            messages.warning(request, f"Warning: {warning}.")
        messages.success(
            request,
            f"Calibration #{stored.pk} stored: threshold {stored.threshold:.4f} "
            f"({stored.bona_fide} live, {stored.attacks} spoof, {stored.refused} refused).",
        )
        return HttpResponseRedirect(reverse("admin:accounts_tenant_change", args=[tenant.pk]))


admin.site.unregister(Tenant)
admin.site.register(Tenant, ConsoleTenantAdmin)
