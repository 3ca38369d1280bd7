"""Admin: tenants with usage, one-time display of new hash_ids, revocation, quota reset,
calibration records and their revert. The console extends the tenant admin with what needs the
engine or the evaluations (calibration upload, target APCER) and the usage page."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from accounts import quota
from accounts.models import Calibration, HashId, IssuedHashId, Tenant, revert_calibration

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


def announce(request: HttpRequest, issued: IssuedHashId) -> None:
    """Show the full secret once; after this page it exists nowhere."""
    messages.warning(
        request,
        f"New hash_id for {issued.record.tenant}: {issued.secret} — copy it now, "
        "it will not be shown again.",
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
    fields = ("prefix", "created_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "revoked_at")
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
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
    fields = TENANT_FIELDS
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
        if found is None:
            return mark_safe("Uncalibrated (the engine's own P(live)).")
        note = ""
        if found.profile != tenant.profile:
            note = " Not applied: it was fitted for another profile; recalibrate or revert."
        return format_html("{}{}", describe(found), note)

    @admin.display(description="active hash_ids", ordering="active_hash_id_count")
    def active_hash_ids(self, tenant: Tenant) -> int:
        return tenant.active_hash_id_count  # type: ignore[attr-defined]

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
