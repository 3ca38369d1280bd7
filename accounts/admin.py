"""Admin: tenants with usage, one-time display of new hash_ids, revocation, quota reset,
calibration (from an uploaded zip, processed in memory) and its revert."""

from typing import Any

import numpy as np
from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts import quota
from accounts.calibrate import CalibrationError, fit_and_store, score, warnings_for, zip_images
from accounts.models import Calibration, HashId, IssuedHashId, Tenant, revert_calibration
from liveness.models import Evaluation
from ml import metrics
from ml.errors import ModelInstallError

FIGURE_ROWS = (
    ("before", "before, on the sample"),
    ("after", "after, on the sample"),
    ("cross_validated", "after, cross-validated"),
)


def figures_table(calibration: Calibration) -> SafeString:
    """APCER / BPCER / ACER / AUC with 95 % intervals, before and after."""

    def cell(values: list[float]) -> str:
        return f"{values[0]:.3f} [{values[1]:.3f}, {values[2]:.3f}]"

    rows = [
        (label, *(cell(figs[n]) for n in ("APCER", "BPCER", "ACER", "AUC")))
        for key, label in FIGURE_ROWS
        if (figs := calibration.figures.get(key))
    ]
    body = format_html_join(
        "", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
    )
    return format_html(
        '<table class="calibration-figures"><thead><tr><th></th><th>APCER</th><th>BPCER</th>'
        "<th>ACER</th><th>AUC</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def describe(calibration: Calibration) -> SafeString:
    p = calibration.params
    target = (
        f"target APCER {calibration.target_apcer:.2%}"
        if calibration.target_apcer is not None
        else "APCER = BPCER"
    )
    return format_html(
        '<div id="calibration-status"><p>Calibration #{} ({} profile) by {} on {} ({}): '
        "P(live) = sigmoid({} &times; z + {}); threshold {} ({}; {} before); {} live and {} "
        "spoof images, {} refused by the gates.</p>{}</div>",
        calibration.pk,
        calibration.profile,
        calibration.created_by,
        f"{calibration.created_at:%Y-%m-%d %H:%M} UTC",
        calibration.origin,
        f"{p['a']:.4f}",
        f"{p['b']:.4f}",
        f"{calibration.threshold:.4f}",
        target,
        f"{calibration.previous_threshold:.4f}",
        calibration.bona_fide,
        calibration.attacks,
        calibration.refused,
        figures_table(calibration),
    )


class CalibrationUploadForm(forms.Form):
    archive = forms.FileField(
        label="Zip with live/ and spoof/ folders",
        help_text="This tenant's own labelled captures (JPEG/PNG). Read in memory only; "
        "nothing is stored but the fitted calibration and its figures.",
    )
    target_apcer = forms.FloatField(
        label="Target APCER (%)",
        required=False,
        min_value=0.0,
        max_value=100.0,
        help_text="Optional. Empty: the threshold where APCER = BPCER on the sample.",
    )


def announce(request: HttpRequest, issued: IssuedHashId) -> None:
    """Show the full secret once; after this page it exists nowhere."""
    messages.warning(
        request,
        f"New hash_id for {issued.record.tenant}: {issued.secret} — copy it now, "
        "it will not be shown again.",
    )


class HashIdInline(admin.TabularInline):
    model = HashId
    extra = 0
    can_delete = False
    fields = ("prefix", "created_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "revoked_at")
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False


class TenantForm(ModelForm):
    """Adds "target APCER": the threshold is then derived from the last evaluation of the
    tenant's profile (the lowest threshold whose APCER on that evaluation meets the target)."""

    target_apcer = forms.FloatField(
        label="Target APCER (%)",
        required=False,
        min_value=0.0,
        max_value=100.0,
        help_text="Optional. Sets the threshold from the last `manage.py evaluate` of this "
        "tenant's profile: the lowest threshold that accepts at most this share of attack "
        "presentations.",
    )

    class Meta:
        model = Tenant
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        target = cleaned.get("target_apcer")
        if target is None:
            return cleaned
        profile = cleaned.get("profile") or self.instance.profile
        if self.instance.pk and self.instance.active_calibration() is not None:
            raise forms.ValidationError(
                "This tenant is calibrated: its scores are no longer those of the evaluation. "
                "Recalibrate with a target APCER, or revert it to uncalibrated first."
            )
        evaluation = Evaluation.latest_for(profile)
        if evaluation is None or not evaluation.attack_scores():
            raise forms.ValidationError(
                f"No evaluation of the {profile} profile with attack presentations yet; run "
                f"`manage.py evaluate DIR --profile {profile}` first."
            )
        attack = np.asarray(evaluation.attack_scores())
        live = np.asarray(evaluation.bona_fide_scores())
        threshold = min(metrics.threshold_for_apcer(attack, target / 100), 1.0)
        cleaned["threshold"] = threshold
        self.derived = (evaluation, threshold, *metrics.apcer_bpcer(live, attack, threshold))
        return cleaned


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = (
        "name",
        "is_active",
        "request_limit",
        "requests_used",
        "remaining_quota",
        "threshold",
        "profile",
        "crop_policy",
        "calibrated",
        "active_hash_ids",
        "created_at",
    )
    list_filter = ("is_active", "profile", "crop_policy")
    search_fields = ("name",)
    readonly_fields = ("requests_used", "calibration_status", "created_at", "updated_at")
    fields = (
        "name",
        "is_active",
        "request_limit",
        "requests_used",
        "rate_limit_per_minute",
        "threshold",
        "target_apcer",
        "profile",
        "crop_policy",
        "calibration_status",
        "created_at",
        "updated_at",
    )
    inlines = [HashIdInline]
    actions = ["issue_hash_id", "reset_quota", "revert_to_uncalibrated"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        active = Count("hash_ids", filter=Q(hash_ids__revoked_at__isnull=True))
        return super().get_queryset(request).annotate(active_hash_id_count=active)

    @admin.display(description="remaining")
    def remaining_quota(self, tenant: Tenant) -> str:
        remaining = tenant.remaining
        return "unlimited" if remaining is None else str(remaining)

    @admin.display(description="calibrated", boolean=True)
    def calibrated(self, tenant: Tenant) -> bool:
        return tenant.active_calibration() is not None

    @admin.display(description="calibration")
    def calibration_status(self, tenant: Tenant) -> str:
        if tenant.pk is None:
            return "-"
        active = (tenant.calibration or {}).get("id")
        found = Calibration.objects.filter(pk=active, tenant=tenant).first() if active else None
        link = format_html(
            '<a id="calibrate-link" href="{}">Calibrate from a zip of labelled captures</a>',
            reverse("admin:accounts_tenant_calibrate", args=[tenant.pk]),
        )
        if found is None:
            return format_html("Uncalibrated (the engine's own P(live)). {}", link)
        note = ""
        if found.profile != tenant.profile:
            note = " Not applied: it was fitted for another profile; recalibrate or revert."
        return format_html("{}{} {}", describe(found), note, link)

    @admin.display(description="active hash_ids", ordering="active_hash_id_count")
    def active_hash_ids(self, tenant: Tenant) -> int:
        return tenant.active_hash_id_count  # type: ignore[attr-defined]

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
        if not change:
            super().save_model(request, obj, form, change)
            announce(request, HashId.issue(obj))
            return
        # Never write requests_used back from a form: it would undo concurrent reservations.
        fields = {f for f in form.changed_data if f not in ("requests_used", "target_apcer")}
        if derived is not None:
            fields.add("threshold")
        obj.save(update_fields=[*sorted(fields), "updated_at"])

    @admin.action(description="Issue a new hash_id (shown once)")
    def issue_hash_id(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            announce(request, HashId.issue(tenant))

    @admin.action(description="Reset quota (requests used = 0)")
    def reset_quota(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        count = quota.reset(queryset)
        self.message_user(request, f"Quota reset for {count} tenant(s).", messages.SUCCESS)

    @admin.action(description="Revert to uncalibrated (restore the earlier threshold)")
    def revert_to_uncalibrated(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            if tenant.calibration:
                revert_calibration(tenant)
                self.message_user(
                    request,
                    f"{tenant.name}: uncalibrated, threshold {tenant.threshold:.4f}.",
                    messages.SUCCESS,
                )

    def get_urls(self) -> list[URLPattern]:
        calibrate = path(
            "<int:tenant_id>/calibrate/",
            self.admin_site.admin_view(self.calibrate_view),
            name="accounts_tenant_calibrate",
        )
        return [calibrate, *super().get_urls()]

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
        return TemplateResponse(request, "admin/accounts/tenant_calibrate.html", context)

    def _calibrate_from(
        self, request: HttpRequest, tenant: Tenant, form: CalibrationUploadForm
    ) -> HttpResponse | None:
        from liveness.runtime import get_engine  # the admin process's engine

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


@admin.register(Calibration)
class CalibrationAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "tenant",
        "profile",
        "created_by",
        "origin",
        "bona_fide",
        "attacks",
        "threshold",
        "reverted_at",
    )
    list_filter = ("tenant", "profile")
    readonly_fields = [*(f.name for f in Calibration._meta.fields), "figures_display"]

    @admin.display(description="figures (95 % CI)")
    def figures_display(self, calibration: Calibration) -> str:
        return figures_table(calibration)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # calibrations come from `manage.py calibrate` or the tenant's page

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HashId)
class HashIdAdmin(admin.ModelAdmin):
    list_display = ("prefix", "tenant", "created_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "tenant")
    search_fields = ("prefix", "tenant__name")
    fields = ("tenant", "prefix", "created_at", "revoked_at")
    readonly_fields = ("tenant", "prefix", "created_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # New hash_ids come from the tenant page so the secret can be shown once.
        return False

    @admin.action(description="Revoke selected hash_ids")
    def revoke(self, request: HttpRequest, queryset: QuerySet[HashId]) -> None:
        count = 0
        for hash_id in queryset.filter(revoked_at__isnull=True):
            hash_id.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} hash_id(s).", messages.SUCCESS)
