"""Admin: tenants with usage, one-time display of new hash_ids, revocation, quota reset,
calibration records and their revert. The console extends the tenant admin with what needs the
engine or the evaluations (calibration upload, target APCER) and the usage page."""

import base64
import math
from typing import Any

import numpy as np
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from accounts import audit, quota
from accounts.models import Calibration, HashId, IssuedHashId, Tenant, revert_calibration
from ml import plots

INTERVALS = ("APCER", "BPCER", "ACER", "AUC")
FIGURE_ROWS = (
    ("before", "before, on the sample"),
    ("after", "after, on the sample"),
    ("cross_validated", "after, cross-validated"),
)


def number(value: float | None, spec: str = ".4f") -> str:
    """``value`` formatted, or "-" when there is none: a rate over an empty class is NaN, and
    the stored report holds it as null (a one-class source, a crop-only or frame-only set)."""
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _interval(values: list[float | None] | None) -> str:
    """value [low, high]; "-" for an absent value, the value alone for an absent interval."""
    value, low, high = (list(values or []) + [None, None, None])[:3]
    shown = number(value, ".3f")
    if shown == "-" or "-" in (number(low), number(high)):
        return shown
    return f"{shown} [{number(low, '.3f')}, {number(high, '.3f')}]"


def intervals_table(rows: list[tuple[str, dict[str, Any]]], css: str) -> SafeString:
    """One row per label: APCER / BPCER / ACER / AUC as value [low, high] (95 %)."""
    cells = [(label, *(_interval(figs.get(n)) for n in INTERVALS)) for label, figs in rows]
    body = format_html_join(
        "", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", cells
    )
    return format_html(
        '<table class="{}"><thead><tr><th></th><th>APCER</th><th>BPCER</th>'
        "<th>ACER</th><th>AUC</th></tr></thead><tbody>{}</tbody></table>",
        css,
        body,
    )


def plot_figures(live: np.ndarray, spoof: np.ndarray, threshold: float) -> SafeString:
    """The DET curve and score histograms, drawn in memory, as inline images (never a file)."""
    drawn = plots.png_plots(live, spoof, threshold)
    images = (
        (name, base64.b64encode(png).decode("ascii"), note)
        for (png, note), name in zip(drawn, ("det", "histogram"), strict=True)
    )
    return format_html_join(
        "",
        '<figure class="evaluation-plot" style="display:inline-block;margin:0 1em 1em 0">'
        '<img id="plot-{}" alt="" src="data:image/png;base64,{}" style="max-width:100%">'
        "<figcaption>{}</figcaption></figure>",
        images,
    )


def figures_table(calibration: Calibration) -> SafeString:
    """APCER / BPCER / ACER / AUC with 95 % intervals, before and after."""
    rows = [(label, figs) for key, label in FIGURE_ROWS if (figs := calibration.figures.get(key))]
    return intervals_table(rows, "calibration-figures")


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


def announce(request: HttpRequest, issued: IssuedHashId) -> None:
    """Show the full secret once; after this page it exists nowhere."""
    audit.record(issued.record.tenant, f"Issued hash_id {issued.record.prefix}…", request.user)
    element = f"new-hash-id-{issued.record.pk}"
    messages.warning(
        request,
        format_html(
            'New hash_id for {}: <code id="{}" class="new-hash-id">{}</code> '
            '<button type="button" class="button copy-hash-id" data-copy="{}">Copy</button> '
            "— copy it now, it will not be shown again.",
            issued.record.tenant,
            element,
            issued.secret,
            element,
        ),
    )


QUOTA_STYLE = {
    "exhausted": "background:#c62828;color:#fff;padding:1px 6px;border-radius:3px",
    "near": "background:#f9a825;color:#000;padding:1px 6px;border-radius:3px",
}
QUOTA_TITLE = {"exhausted": "limit reached: checks get 429", "near": "near its limit"}

# Changes to these are written to the history with their old and new values.
AUDITED_FIELDS = (
    "is_active",
    "request_limit",
    "rate_limit_per_minute",
    "threshold",
    "profile",
    "crop_policy",
)

TENANT_FIELDS: tuple[str, ...] = (
    "name",
    "is_active",
    "request_limit",
    "requests_used",
    "rate_limit_per_minute",
    "threshold",
    "profile",
    "crop_policy",
    "calibration_status",
    "created_at",
    "updated_at",
)


class HashIdInline(admin.TabularInline):
    model = HashId
    extra = 0
    can_delete = False
    fields = ("prefix", "created_at", "revoked_at", "revoke_button")
    readonly_fields = ("prefix", "created_at", "revoked_at", "revoke_button")
    show_change_link = True

    @admin.display(description="revoke")
    def revoke_button(self, hash_id: HashId) -> str:
        if hash_id.pk is None or hash_id.is_revoked:
            return "-"
        # formaction: posts the change form's CSRF token to the revoke view, saving nothing.
        url = reverse("admin:accounts_tenant_revoke", args=[hash_id.tenant_id, hash_id.pk])
        return format_html(
            '<button type="submit" class="button revoke-hash-id" formaction="{}" '
            'formnovalidate data-prefix="{}">Revoke</button>',
            url,
            hash_id.prefix,
        )

    def has_add_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    change_list_template = "admin/accounts/tenant_change_list.html"
    # Few, short columns: the list fits a 1280 px window (tests/ops/test_admin_browser.py).
    list_display = (
        "name",
        "is_active",
        "used_of_limit",
        "remaining_quota",
        "threshold_3",
        "profile_and_crops",
        "calibrated",
        "active_hash_ids",
    )
    list_filter = ("is_active", "profile", "crop_policy")
    search_fields = ("name",)
    readonly_fields = ("requests_used", "calibration_status", "created_at", "updated_at")
    fields = TENANT_FIELDS
    inlines = [HashIdInline]
    actions = ["issue_hash_id", "reset_quota", "revert_to_uncalibrated"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        active = Count("hash_ids", filter=Q(hash_ids__revoked_at__isnull=True))
        return super().get_queryset(request).annotate(active_hash_id_count=active)

    @admin.display(description="used / limit", ordering="requests_used")
    def used_of_limit(self, tenant: Tenant) -> str:
        limit = "∞" if tenant.request_limit is None else tenant.request_limit
        return f"{tenant.requests_used} / {limit}"

    @admin.display(description="remaining")
    def remaining_quota(self, tenant: Tenant) -> str:
        remaining = tenant.remaining
        text = "unlimited" if remaining is None else str(remaining)
        state = tenant.quota_state
        return format_html(
            '<span class="quota-{}" style="{}" title="{}">{}</span>',
            state,
            QUOTA_STYLE.get(state, ""),
            QUOTA_TITLE.get(state, ""),
            text,
        )

    @admin.display(description="threshold", ordering="threshold")
    def threshold_3(self, tenant: Tenant) -> str:
        return f"{tenant.threshold:.3f}"

    @admin.display(description="profile / crops", ordering="profile")
    def profile_and_crops(self, tenant: Tenant) -> str:
        return f"{tenant.profile} / {tenant.crop_policy}"

    @admin.display(description="calibrated", boolean=True)
    def calibrated(self, tenant: Tenant) -> bool:
        return tenant.active_calibration() is not None

    @admin.display(description="calibration")
    def calibration_status(self, tenant: Tenant) -> str:
        if tenant.pk is None:
            return "-"
        active = (tenant.calibration or {}).get("id")
        found = Calibration.objects.filter(pk=active, tenant=tenant).first() if active else None
        if found is None:
            return mark_safe("Uncalibrated (the engine's own P(live)).")
        note = ""
        if found.profile != tenant.profile:
            note = " Not applied: it was fitted for another profile; recalibrate or revert."
        return format_html("{}{}", describe(found), note)

    @admin.display(description="active hash_ids", ordering="active_hash_id_count")
    def active_hash_ids(self, tenant: Tenant) -> int:
        return tenant.active_hash_id_count  # type: ignore[attr-defined]

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Deleting a tenant takes its calibrations with it, though they cannot be deleted on
        their own."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {Calibration._meta.verbose_name}, protected

    def get_urls(self) -> list[URLPattern]:
        revoke = path(
            "<int:tenant_id>/revoke/<int:hash_id>/",
            self.admin_site.admin_view(self.revoke_view),
            name="accounts_tenant_revoke",
        )
        return [revoke, *super().get_urls()]

    @method_decorator(require_POST)
    def revoke_view(self, request: HttpRequest, tenant_id: int, hash_id: int) -> HttpResponse:
        """Revoke one hash_id from its tenant's page (POST only; the change form's token)."""
        record = get_object_or_404(HashId, pk=hash_id, tenant_id=tenant_id)
        if not self.has_change_permission(request, record.tenant):
            return HttpResponse(status=403)
        if not record.is_revoked:
            record.revoke()
            audit.record(record.tenant, f"Revoked hash_id {record.prefix}…", request.user)
            self.message_user(request, f"Revoked hash_id {record.prefix}….", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:accounts_tenant_change", args=[tenant_id]))

    def construct_change_message(  # type: ignore[override]  # Django takes a string too
        self, request: HttpRequest, form: Form, formsets: Any, add: bool = False
    ) -> str | list[dict[str, Any]]:
        """Old and new values of what decides verdicts, so the history says what changed."""
        decisive = [f for f in AUDITED_FIELDS if f in form.changed_data]
        if add or not decisive:
            return super().construct_change_message(request, form, formsets, add)
        changes = "; ".join(
            f"{name} {form.initial.get(name)} → {form.cleaned_data.get(name)}" for name in decisive
        )
        others = sorted(set(form.changed_data) - set(decisive) - {"target_apcer"})
        rest = f" Also changed: {', '.join(others)}." if others else ""
        return f"Changed {changes}.{rest}"

    def update_fields(self, form: ModelForm) -> set[str]:
        """The columns a change form writes. Never requests_used: writing it back from a form
        would undo concurrent reservations."""
        return {f for f in form.changed_data if f != "requests_used"}

    def save_model(self, request: HttpRequest, obj: Tenant, form: ModelForm, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            announce(request, HashId.issue(obj))
            return
        obj.save(update_fields=[*sorted(self.update_fields(form)), "updated_at"])

    @admin.action(description="Issue a new hash_id (shown once)")
    def issue_hash_id(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            announce(request, HashId.issue(tenant))

    @admin.action(description="Reset quota (requests used = 0)")
    def reset_quota(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        tenants = list(queryset)
        count = quota.reset(queryset)
        for tenant in tenants:
            audit.record(tenant, f"Reset quota ({tenant.requests_used} used before).", request.user)
        self.message_user(request, f"Quota reset for {count} tenant(s).", messages.SUCCESS)

    @admin.action(description="Revert to uncalibrated (restore the earlier threshold)")
    def revert_to_uncalibrated(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            if tenant.calibration:
                before = tenant.threshold
                revert_calibration(tenant)
                audit.record(
                    tenant,
                    f"Reverted to uncalibrated: threshold {before:.4f} → {tenant.threshold:.4f}.",
                    request.user,
                )
                self.message_user(
                    request,
                    f"{tenant.name}: uncalibrated, threshold {tenant.threshold:.4f}.",
                    messages.SUCCESS,
                )


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
        "threshold_4",
        "reverted_at",
    )
    list_filter = ("tenant", "profile")
    readonly_fields = [
        *(f.name for f in Calibration._meta.fields),
        "figures_display",
        "plots",
    ]

    @admin.display(description="figures (95 % CI)")
    def figures_display(self, calibration: Calibration) -> str:
        return figures_table(calibration)

    @admin.display(description="plots (calibrated scores of the sample)")
    def plots(self, calibration: Calibration) -> SafeString | str:
        scores = calibration.figures.get("scores")
        if not scores:
            return "- (stored before calibrations kept their sample's scores)"
        live = np.asarray(scores["live"], dtype=float)
        spoof = np.asarray(scores["spoof"], dtype=float)
        return plot_figures(live, spoof, calibration.threshold)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # calibrations come from `manage.py calibrate` or the tenant's page

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the history of a tenant's thresholds

    @admin.display(description="threshold", ordering="threshold")
    def threshold_4(self, calibration: Calibration) -> str:
        return f"{calibration.threshold:.4f}"


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
            audit.record(hash_id.tenant, f"Revoked hash_id {hash_id.prefix}…", request.user)
            count += 1
        self.message_user(request, f"Revoked {count} hash_id(s).", messages.SUCCESS)
