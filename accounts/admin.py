"""Admin: tenants with usage, one-time display of new hash_ids, revocation, quota reset."""

from typing import Any

import numpy as np
from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from accounts import quota
from accounts.models import HashId, IssuedHashId, Tenant
from liveness.models import Evaluation
from ml import metrics


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
        cleaned = super().clean()
        target = cleaned.get("target_apcer")
        if target is None:
            return cleaned
        profile = cleaned.get("profile") or self.instance.profile
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
        "active_hash_ids",
        "created_at",
    )
    list_filter = ("is_active", "profile")
    search_fields = ("name",)
    readonly_fields = ("requests_used", "created_at", "updated_at")
    fields = (
        "name",
        "is_active",
        "request_limit",
        "requests_used",
        "rate_limit_per_minute",
        "threshold",
        "target_apcer",
        "profile",
        "created_at",
        "updated_at",
    )
    inlines = [HashIdInline]
    actions = ["issue_hash_id", "reset_quota"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        active = Count("hash_ids", filter=Q(hash_ids__revoked_at__isnull=True))
        return super().get_queryset(request).annotate(active_hash_id_count=active)

    @admin.display(description="remaining")
    def remaining_quota(self, tenant: Tenant) -> str:
        remaining = tenant.remaining
        return "unlimited" if remaining is None else str(remaining)

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


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "profile", "folder", "bona_fide", "attacks", "auc", "threshold")
    list_filter = ("profile",)
    readonly_fields = [f.name for f in Evaluation._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # evaluations come from `manage.py evaluate`


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
