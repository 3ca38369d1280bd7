"""Admin: tenants with usage, one-time display of new hash_ids, revocation, quota reset.
What changes a tenant needs the matching permission: issuing a hash_id ``add_hashid``, revoking
one ``change_hashid``, resetting a quota ``change_tenant``; a viewer gets 403. The calibration
app extends the tenant admin with its calibration (status, revert, zip upload), the console
with the target APCER and the usage page, and registers the result (console/admin.py)."""

import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypedDict

from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Model, Q, QuerySet
from django.forms import Form, ModelForm
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django_stubs_ext import WithAnnotations

from accounts import audit
from accounts.models import HashId, IssuedHashId, Tenant, refusals_of
from guard import formatting
from guard.adminperms import (
    TENANTS_OF_ITS_ROWS,
    ContainedGroupAdmin,
    ContainedUserAdmin,
    PermittedActionsAdmin,
)
from guard.models import Refusal
from guard.viewing import user_may_view

logger = logging.getLogger(__name__)


def fields_after(fields: tuple[str, ...], anchor: str, *names: str) -> tuple[str, ...]:
    """``fields`` with ``names`` after ``anchor``: how the extensions of TenantAdmin add theirs."""
    i = fields.index(anchor) + 1
    return (*fields[:i], *names, *fields[i:])


def tenant_said(name: str) -> str:
    """ "Tenant “acme”": how a message on an admin page names a tenant. The admin's template
    capitalises each message's first letter (capfirst): one that began with the name showed
    tenant "acme" as "Acme", which may be another tenant's name."""
    return f"Tenant “{name}”"


def may_issue(request: HttpRequest) -> bool:
    """Issuing a hash_id adds one: Django's add permission of HashId."""
    codename = get_permission_codename("add", HashId._meta)
    return request.user.has_perm(f"{HashId._meta.app_label}.{codename}")


def issue(request: HttpRequest, tenant: Tenant) -> IssuedHashId | None:
    """A new hash_id for ``tenant`` with its history entry, both or neither (audit.recorded):
    written apart, a process killed between the two (or a history insert failing) left a
    working key with no entry, and the page answered 500. None, said on the page, when the
    transaction failed: its secret was never stored, so it is never shown."""

    def issued() -> IssuedHashId:
        new = HashId.issue(tenant)
        audit.record(tenant, f"Issued hash_id {new.record.prefix}…", request.user)
        return new

    return audit.recorded(
        request,
        issued,
        f"{tenant_said(tenant.name)}: no hash_id was issued.",
        logger,
        "%s: issuing a hash_id failed",
        tenant.name,
    )


def _shown(value: Any) -> Any:
    """A value in the history: a float (a fitted threshold) to at most 4 places."""
    return round(value, formatting.SCORE_PLACES) if isinstance(value, float) else value


def reset_and_record(request: HttpRequest, queryset: QuerySet[Tenant]) -> int:
    """Reset the quotas of ``queryset``, one history entry each (the action and the button): how
    many were reset. Each tenant's reset and its entry in one transaction, both or neither; one
    that failed is said on the page, and the others are still reset."""
    tenants = queryset.order_by("pk").values_list("pk", "name")
    return sum(reset_one(request, pk, name) for pk, name in tenants)


def reset_one(request: HttpRequest, pk: int, name: str) -> int:
    """Reset the quota of tenant ``pk`` with its history entry (audit.recorded): 1, or 0 when
    it is gone or neither was written (said on the page)."""

    def reset() -> int:
        count = 0
        for tenant in Tenant.reset_quotas(Tenant.objects.filter(pk=pk)):
            audit.record(tenant, f"Reset quota ({tenant.requests_used} used before).", request.user)
            count += 1
        return count

    done = audit.recorded(
        request,
        reset,
        f"{tenant_said(name)}: quota not reset.",
        logger,
        "%s: resetting the quota failed",
        name,
    )
    return done or 0


def revoke_and_record(request: HttpRequest, hash_id: HashId) -> bool:
    """Revoke ``hash_id`` with its history entry in one transaction, both or neither (the
    button and the action; audit.recorded); False, said on the page, when neither was
    written."""

    def revoked() -> bool:
        hash_id.revoke()
        audit.record(hash_id.tenant, f"Revoked hash_id {hash_id.prefix}…", request.user)
        return True

    name = hash_id.tenant.name
    said = f"{tenant_said(name)}: hash_id {hash_id.prefix}… was not revoked."
    if audit.recorded(
        request, revoked, said, logger, "%s: revoking hash_id %s… failed", name, hash_id.prefix
    ):
        return True
    hash_id.revoked_at = None  # as it is in the database
    return False


def record_deleted(request: HttpRequest, hash_ids: list[HashId]) -> None:
    """A deleted hash_id ends its access as a revoked one does: said in its tenant's history."""
    for hash_id in hash_ids:
        audit.record(hash_id.tenant, f"Deleted hash_id {hash_id.prefix}…", request.user)


QUOTA_TITLE = {"exhausted": "limit reached: checks get 429", "near": "near its limit"}

# Changes to these are written to the history with their old and new values.
AUDITED_FIELDS = (
    "is_active",
    "request_limit",
    "rate_limit_per_minute",
    "threshold",
    "profile",
    "crop_policy",
    "challenge",
    "challenge_band",
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
    "challenge",
    "challenge_band",
    "created_at",
    "updated_at",
)


class HashIdInline(admin.TabularInline[HashId, Tenant]):
    """The tenant's hash_ids; the Revoke button only for a user who may revoke them."""

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

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        return [f for f in fields if f != "revoke_button"]


class ActiveHashIds(TypedDict):
    """What TenantAdmin's list annotates each tenant with."""

    active_hash_id_count: int


class TenantAdmin(PermittedActionsAdmin[Tenant]):
    change_list_template = "admin/accounts/tenant_change_list.html"
    # Few, short columns: the list fits a 1280 px window (tests/system/test_admin_browser.py).
    list_display: tuple[str, ...] = (
        "name",
        "is_active",
        "used_of_limit",
        "remaining_quota",
        "threshold_3",
        "profile_and_crops",
        "active_hash_ids",
    )
    list_filter = ("is_active", "profile", "crop_policy", "challenge")
    search_fields = ("name",)
    readonly_fields: ClassVar[tuple[str, ...]] = ("requests_used", "created_at", "updated_at")
    fields = TENANT_FIELDS
    inlines = [HashIdInline]
    actions = ["issue_hash_id", "reset_quota"]

    def deleted_alongside(self, objs: Any) -> dict[type[Model], int]:
        """Its daily refusal counts, which its post_delete takes (accounts.models.forget_refusals:
        kept by the tenant's id, with no foreign key for Django's Collector to follow): the
        pages count them and, as for its checks, need ``delete_refusal`` when there are any."""
        return {Refusal: refusals_of(objs).count()}

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """The name as typed: the model trims its spaces and refuses a line break or a tab at
        either end (a form's strip took every whitespace away, unseen, before any validator)."""
        if db_field.name == "name":
            kwargs["strip"] = False
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_list_display(self, request: HttpRequest) -> Any:
        """The active hash_id count only for a user who may view hash_ids, to whom alone the
        tenant page lists them (as the "calibrated" column, calibration.admin)."""
        shown = super().get_list_display(request)
        if user_may_view(request.user, HashId):
            return shown
        return [f for f in shown if f != "active_hash_ids"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        active = Count("hash_ids", filter=Q(hash_ids__revoked_at__isnull=True))
        return super().get_queryset(request).annotate(active_hash_id_count=active)

    @admin.display(description="used / limit", ordering="requests_used")
    def used_of_limit(self, tenant: Tenant) -> str:
        limit = "∞" if tenant.request_limit is None else formatting.count(tenant.request_limit)
        return f"{formatting.count(tenant.requests_used)} / {limit}"

    @admin.display(description="remaining")
    def remaining_quota(self, tenant: Tenant) -> str:
        remaining = tenant.remaining
        text = "unlimited" if remaining is None else formatting.count(remaining)
        state = tenant.quota_state
        # Coloured by the class (console/static/console/console.css): the pages' policy refuses
        # style attributes.
        return format_html(
            '<span class="quota-{}" title="{}">{}</span>',
            state,
            QUOTA_TITLE.get(state, ""),
            text,
        )

    @admin.display(description="threshold", ordering="threshold")
    def threshold_3(self, tenant: Tenant) -> str:
        return formatting.with_exact(formatting.decimal(tenant.threshold, 3), tenant.threshold)

    @admin.display(description="profile / crops", ordering="profile")
    def profile_and_crops(self, tenant: Tenant) -> str:
        return f"{tenant.profile} / {tenant.crop_policy}"

    @admin.display(description="active hash_ids", ordering="active_hash_id_count")
    def active_hash_ids(self, tenant: "WithAnnotations[Tenant, ActiveHashIds]") -> int:
        return tenant.active_hash_id_count

    def get_urls(self) -> list[URLPattern]:
        def view(route: str, function: Callable[..., HttpResponse], name: str) -> URLPattern:
            return path(route, self.admin_site.admin_view(function), name=name)

        return [
            view(
                "<int:tenant_id>/revoke/<int:hash_id>/", self.revoke_view, "accounts_tenant_revoke"
            ),
            view("<int:tenant_id>/issue/", self.issue_view, "accounts_tenant_issue"),
            view("<int:tenant_id>/reset-quota/", self.reset_view, "accounts_tenant_reset_quota"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The page's task buttons, each only for a user who may do it."""
        tasks = {"may_issue": may_issue(request), "may_reset": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, {**tasks, **(extra_context or {})})

    def _tenant_for(self, request: HttpRequest, tenant_id: int, allowed: bool) -> Tenant:
        """The tenant of a task button's POST: 403 before saying whether it exists."""
        if not allowed:
            raise PermissionDenied
        return get_object_or_404(Tenant, pk=tenant_id)

    def issue_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """The tenant page's "Issue a new hash_id" button (POST; the new one shown once), for
        a user who may also view the tenant: ``add_hashid`` alone opens no page with the button,
        and issued for any tenant id typed into its address."""
        allowed = may_issue(request) and self.has_view_or_change_permission(request)
        tenant = self._tenant_for(request, tenant_id, allowed)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        issued = issue(request, tenant)
        if issued is None:  # said on the tenant's page
            return HttpResponseRedirect(reverse("admin:accounts_tenant_change", args=[tenant.pk]))
        return self.show_once(request, [issued])

    def reset_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """The tenant page's "Reset quota" button (POST), audited as the list action is."""
        tenant = self._tenant_for(request, tenant_id, self.has_change_permission(request))
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if reset_and_record(request, Tenant.objects.filter(pk=tenant.pk)):
            self.message_user(request, f"Quota reset for {tenant.name}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:accounts_tenant_change", args=[tenant.pk]))

    def revoke_view(self, request: HttpRequest, tenant_id: int, hash_id: int) -> HttpResponse:
        """Revoke one hash_id from its tenant's page (POST only; the change form's token)."""
        hash_ids = self.admin_site.get_model_admin(HashId)
        if not hash_ids.has_change_permission(request):  # before saying whether it exists
            raise PermissionDenied
        # By its own id first: Django bounds a primary key lookup to the column's range, not a
        # foreign key's (a tenant id past 64 bits raises OverflowError on SQLite, a 500).
        record = get_object_or_404(HashId, pk=hash_id)
        if record.tenant_id != tenant_id:
            raise Http404
        if not hash_ids.has_change_permission(request, record):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not record.is_revoked and revoke_and_record(request, record):
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
            f"{name} {_shown(form.initial.get(name))} → {_shown(form.cleaned_data.get(name))}"
            for name in decisive
        )
        others = sorted(set(form.changed_data) - set(decisive) - {"target_apcer"})
        rest = f" Also changed: {', '.join(others)}." if others else ""
        return f"Changed {changes}.{rest}"

    def update_fields(self, form: ModelForm[Tenant]) -> set[str]:
        """The columns a change form writes. Never requests_used: writing it back from a form
        would undo concurrent reservations."""
        return {f for f in form.changed_data if f != "requests_used"}

    def save_model(
        self, request: HttpRequest, obj: Tenant, form: ModelForm[Tenant], change: bool
    ) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        obj.save(update_fields=[*sorted(self.update_fields(form)), "updated_at"])

    def response_add(
        self, request: HttpRequest, obj: Tenant, post_url_continue: str | None = None
    ) -> HttpResponse:
        """A new tenant gets its first hash_id, shown on the page answering the POST."""
        if not may_issue(request):
            self.message_user(
                request,
                "No hash_id was issued: your account may not add hash_ids.",
                messages.WARNING,
            )
            return super().response_add(request, obj, post_url_continue)
        # Inside the add view's transaction: a failed issue (its own savepoint) leaves the tenant
        # added, with its entry and no hash_id, which its page's button issues.
        issued = issue(request, obj)
        if issued is None:
            return super().response_add(request, obj, post_url_continue)
        notice = f"The tenant “{obj}” was added."
        return self.show_once(request, [issued], notice)

    def show_once(
        self, request: HttpRequest, issued: list[IssuedHashId], notice: str = ""
    ) -> HttpResponse:
        """The page answering the POST that issued the secrets: the only place they ever are.
        Not a message before a redirect: that kept them in the session until the next page was
        fetched, for up to 14 days when it never was."""
        shown = [(i.record.tenant, i.secret, f"new-hash-id-{i.record.pk}") for i in issued]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "New hash_id" if len(shown) == 1 else "New hash_ids",
            "issued": shown,
            "notice": notice,
        }
        response = TemplateResponse(request, "admin/accounts/hash_ids_issued.html", context)
        add_never_cache_headers(response)
        return response

    def has_issue_permission(self, request: HttpRequest) -> bool:
        return may_issue(request)

    @admin.action(description="Issue a new hash_id (shown once)", permissions=["issue"])
    def issue_hash_id(
        self, request: HttpRequest, queryset: QuerySet[Tenant]
    ) -> HttpResponse | None:
        """One per tenant, each in its own transaction; those that failed are said on the page
        (the list's, when none was issued)."""
        issued = [i for i in (issue(request, tenant) for tenant in queryset) if i is not None]
        return self.show_once(request, issued) if issued else None

    @admin.action(description="Reset quota (requests used = 0)", permissions=["change"])
    def reset_quota(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        count = reset_and_record(request, queryset)
        if count:  # those not reset are said apart
            self.message_user(request, f"Quota reset for {count} tenant(s).", messages.SUCCESS)


class HashIdStateFilter(admin.SimpleListFilter):
    """Active or revoked (Django's filter of an empty date said "Empty / Not empty")."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active (accepted)"), ("revoked", "Revoked (answered 401)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[HashId]) -> QuerySet[HashId]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(HashId)
class HashIdAdmin(PermittedActionsAdmin[HashId]):
    list_display = ("prefix", "tenant", "created_at", "revoked_at")
    list_filter = (HashIdStateFilter, TENANTS_OF_ITS_ROWS)
    search_fields = ("prefix", "tenant__name")
    fields = ("tenant", "prefix", "created_at", "revoked_at")
    readonly_fields = ("tenant", "prefix", "created_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # New hash_ids come from the tenant page so the secret can be shown once.
        return False

    def delete_model(self, request: HttpRequest, obj: HashId) -> None:
        # in delete_view's transaction, with Django's entry
        super().delete_model(request, obj)
        record_deleted(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[HashId]) -> None:
        # in guard.deletion.delete's transaction, with the history it writes
        deleted = list(queryset.select_related("tenant"))
        super().delete_queryset(request, queryset)
        record_deleted(request, deleted)

    @admin.action(description="Revoke selected hash_ids", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[HashId]) -> None:
        """Each hash_id with its history entry in one transaction; one that failed is said on
        the page, and the others are still revoked."""
        count = failed = 0
        for hash_id in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            if revoke_and_record(request, hash_id):
                count += 1
            else:
                failed += 1
        if count or not failed:
            self.message_user(request, f"Revoked {count} hash_id(s).", messages.SUCCESS)


def is_system_user(user: Any) -> bool:
    return user is not None and user.get_username() == audit.SYSTEM_USER


class HistoryKeepingUserAdmin(ContainedUserAdmin):
    """The user admin (nobody grants beyond their own permissions), except that a user with
    history entries is not deleted: LogEntry cascades from its user, so deleting
    ``facia-system`` (inactive, no password: it looks unused) or an operator would erase every
    change they made. Deactivate them instead.

    ``facia-system`` is read only, and no other account may take its name: it carries no
    permission, so anyone who may edit accounts could activate it, set its password and log in
    as it, and their changes would read as a command's in every history (the rule of every
    username, its forms' included: ``accounts.usernames``)."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and not is_system_user(obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        users = {user.pk: user for user in objs}
        kept = (
            LogEntry.objects.filter(user_id__in=users)
            .values_list("user_id")
            .annotate(entries=Count("pk"))
            .order_by("user_id")
        )
        protected = [
            *protected,
            *(
                f"{users[pk]}: {n} history entries (deactivate the account instead)"
                for pk, n in kept
            ),
        ]
        return deleted, counts, perms_needed, protected


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), HistoryKeepingUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, ContainedGroupAdmin)
