"""Admin: tenants with usage, one-time display of new hash_ids, revocation, quota reset."""

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from accounts import quota
from accounts.models import HashId, IssuedHashId, Tenant


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


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "is_active",
        "request_limit",
        "requests_used",
        "remaining_quota",
        "threshold",
        "active_hash_ids",
        "created_at",
    )
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("requests_used", "created_at", "updated_at")
    fields = (
        "name",
        "is_active",
        "request_limit",
        "requests_used",
        "rate_limit_per_minute",
        "threshold",
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
        if not change:
            super().save_model(request, obj, form, change)
            announce(request, HashId.issue(obj))
            return
        # Never write requests_used back from a form: it would undo concurrent reservations.
        fields = [f for f in form.changed_data if f != "requests_used"]
        obj.save(update_fields=[*fields, "updated_at"])

    @admin.action(description="Issue a new hash_id (shown once)")
    def issue_hash_id(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            announce(request, HashId.issue(tenant))

    @admin.action(description="Reset quota (requests used = 0)")
    def reset_quota(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        count = quota.reset(queryset)
        self.message_user(request, f"Quota reset for {count} tenant(s).", messages.SUCCESS)


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
