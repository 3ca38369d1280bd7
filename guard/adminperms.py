"""Admin actions answer 403 to a user they are not offered to, and 400 to rows that are not
ids of their list.

Django offers a user only the actions whose ``permissions`` they hold, but a POST naming one
they are not offered gets the change list back ("No action selected"), not a refusal. Every
model admin of the project derives from :class:`PermittedActionsAdmin`, so such a POST is
refused as plainly as a change form a viewer may not save.

Our lists, and Django's user and group lists as registered here, filter only on the fields
their filters offer (:class:`OfferedFiltersAdmin`), and a number out of range in a list's query
string is a 400 (:class:`SelectedIdsAdmin`).

The user and group admins keep anyone who may edit accounts within their own permissions
(:class:`ContainedUserAdmin`, :class:`ContainedGroupAdmin`).

Every delete page counts the rows it deletes per model (:class:`CountedDeletionAdmin`), and a
list's date hierarchy probes index ranges (:class:`guard.hierarchy.IndexedDateHierarchyAdmin`).

A page asked for a row that is not there names a token-like id by its length only
(:class:`RedactedIdsAdmin`).
"""

import datetime
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard, TypeVar

from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter, helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import (
    BadRequest,
    FieldDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.db.models import Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse

from guard import deletion
from guard.hierarchy import IndexedDateHierarchyAdmin
from guard.validators import no_control_characters, read_apart
from ml.text import trim_spaces
from telemetry.logs import holds_token, redacted

# The model an admin lists: these bases serve every model admin of the project.
_M = TypeVar("_M", bound=Model)


def _last_year(values: list[str]) -> bool:
    """The year Django's date hierarchy reads (the last one given) is datetime's last or past
    it, as a number: its period would end in a year datetime cannot hold."""
    year = values[-1].strip() if values else ""
    return year.isdecimal() and (len(year) > 4 or int(year) >= datetime.MAXYEAR)


class SelectedIdsAdmin(admin.ModelAdmin[_M]):
    """An action's selected rows must be ids of the list's model: Django filters pk__in by
    the posted values as they come, so "abc" (ValueError), a number past SQLite's 64 bits
    (OverflowError) or a NUL (refused by PostgreSQL) would be a 500 and a traceback."""

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """A number out of range in a list's query string is a 400: a foreign key filter past
        SQLite's 64 bits (``?tenant=99999999999999999999999``; Django bounds a primary key's
        lookup, not a foreign key's) and a date hierarchy's year past ``datetime``'s
        (``?created_at__year=99999999999``) raised OverflowError, a 500 with its traceback;
        so did the year 9999 alone, Django's bound of a year being the next year's first day
        (ValueError), which is refused here before it runs."""
        if self.date_hierarchy and _last_year(request.GET.getlist(f"{self.date_hierarchy}__year")):
            raise BadRequest("A number in the query string is out of range.")
        try:
            return super().get_changelist_instance(request)
        except OverflowError:
            raise BadRequest("A number in the query string is out of range.") from None

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        pk = self.model._meta.pk
        assert pk is not None  # every concrete model has one
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                pk.clean(value, None)  # the field's type and the column's range
            except ValidationError:
                raise BadRequest("The selected rows are not ids of this list.") from None
        return super().response_action(request, queryset, *args, **kwargs)


class OfferedFiltersAdmin(admin.ModelAdmin[_M]):
    """A list is filtered by the query string only on the fields its filters and date
    hierarchy offer. Django lets any lookup on the model's own fields and single relations
    through: a tenant viewer read the calibration and shadow candidate's maps and thresholds
    (``?shadow_calibration__threshold__startswith=0.8`` listed the tenant, ``0.7`` did not:
    at most 10 requests a digit) and whether a tenant had check records
    (``?checks__isnull=False``), none of which their permissions show. Any other field is
    refused with 400."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        field = lookup.split(LOOKUP_SEP, 1)[0]
        try:
            self.model._meta.get_field(field)
        except FieldDoesNotExist:  # a SimpleListFilter's parameter, or nothing Django filters
            pass
        else:
            if field not in self.offered_fields(request):
                return False
        return super().lookup_allowed(lookup, value, request)

    def offered_fields(self, request: HttpRequest | None) -> set[str]:
        """The fields the list's filters and date hierarchy filter on (their first part)."""
        filters = self.get_list_filter(request) if request is not None else self.list_filter
        named = [f[0] if isinstance(f, tuple | list) else f for f in filters]
        named.append(self.date_hierarchy or "")
        named.extend(str(f.parameter_name) for f in filters if _is_field_filter(f))
        return {f.split(LOOKUP_SEP, 1)[0] for f in named if isinstance(f, str) and f}


class FixedChoicesFilter(admin.SimpleListFilter):
    """A field's filter listing the values it can hold (``values``), not those found in the
    rows: a field's own filter asks ``SELECT DISTINCT`` over every row (0.41 s over 247,000
    check records on SQLite, for a dozen known values). ``parameter_name`` is the field's
    name, its parameter as with the field's own filter, and a field the list offers."""

    values: tuple[tuple[str, str], ...] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return self.values

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset


def _is_field_filter(spec: object) -> TypeGuard[type[FixedChoicesFilter]]:
    return isinstance(spec, type) and issubclass(spec, FixedChoicesFilter)


class CountedDeletionAdmin(admin.ModelAdmin[_M]):
    """Delete pages (a row's Delete, the list's "Delete selected") that count the rows the
    deletion takes per model, with Django's refusals (``guard.deletion``): Django's listed
    and linked each one, 19.5 s and 17.9 MB for 100,000 check records."""

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        return deletion.deleted_objects(self, objs, request)

    def deleted_alongside(self, objs: Any) -> dict[type[Model], int]:
        """The rows the deletion of ``objs`` takes that Django's Collector does not see (a
        post_delete signal's), counted per model; the pages count them with the others, and
        refuse the deletion to a user who may not delete them (guard.deletion)."""
        return {}


def shown_id(object_id: str) -> str:
    """``object_id`` of an admin URL as Django's message about a missing row may quote it:
    as it is, or ``<redacted:N>`` (N the length Django shows) when it holds a token-like run,
    as sent or as Django unquotes it ("_2F" is "/": a hash_id holding it splits in two)."""
    key = unquote(object_id)
    return redacted(key) if holds_token(object_id) or holds_token(key) else object_id


class RedactedIdsAdmin(admin.ModelAdmin[_M]):
    """The change, delete and history pages of a row that is not there redirect with Django's
    message quoting the id asked for, which waits in the session's database row
    (MESSAGE_STORAGE) until a page shows it or the row is deleted: a hash_id pasted as the id
    would be kept there in clear. A token-like id is named by its length, as in the logs."""

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        base: Any = super()  # private: not in django-stubs
        redirect: HttpResponse = base._get_obj_does_not_exist_redirect(
            request, opts, shown_id(object_id)
        )
        return redirect


class PermittedActionsAdmin(
    OfferedFiltersAdmin[_M],
    SelectedIdsAdmin[_M],
    CountedDeletionAdmin[_M],
    RedactedIdsAdmin[_M],
    IndexedDateHierarchyAdmin[_M],
):
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST" and self.refused_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def refused_actions(self, request: HttpRequest) -> set[str]:
        """The actions this POST names that exist but that this user may not run."""
        # Django's list of this admin's actions before it filters them by permission.
        known = {name for _, name, _ in base_actions(self)}
        named = set(request.POST.getlist("action")) & known
        return named - set(self.get_actions(request))


def base_actions(model_admin: admin.ModelAdmin[Any]) -> list[tuple[Callable[..., Any], str, str]]:
    """Every action of ``model_admin`` (function, name, description), before Django filters
    them by the user's permissions."""
    found: list[tuple[Callable[..., Any], str, str]]
    found = model_admin._get_base_actions()  # type: ignore[attr-defined]  # private: not in django-stubs
    return found


# A list's tenant filter: only the tenants its rows name. Django's default offers every
# tenant, so whoever may view checks, calibrations or hash_ids (not tenants) read all names.
TENANTS_OF_ITS_ROWS = ("tenant", admin.RelatedOnlyFieldListFilter)


def held_by(user: Any) -> set[str]:
    """The permissions ``user`` may use now ("app_label.codename"), as the admin checks them."""
    return set(user.get_all_permissions())


def _names(permissions: Iterable[Permission]) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


def granted_to(user: Any) -> set[str] | None:
    """Every permission ``user``'s account carries, directly or through a group, whether or not
    it is active now (an inactive account's powers come back with its ``is_active``); None for
    a superuser (every permission)."""
    if user.is_superuser:
        return None
    rows = Permission.objects.filter(Q(user=user) | Q(group__user=user)).distinct()
    return _names(rows.select_related("content_type"))


def may_act_as(request: HttpRequest, user: Any) -> bool:
    """Whether ``request``'s user may change, delete or set the password of ``user``: a
    superuser may; anyone else only for accounts that carry nothing they do not hold
    themselves (else setting that account's password, then logging in as it, would give them
    its permissions)."""
    editor = request.user
    if editor.is_superuser:
        return True
    carried = granted_to(user)
    return carried is not None and carried <= held_by(editor)


def refuse_grants(
    request: HttpRequest,
    added_permissions: Iterable[Permission],
    added_groups: Iterable[Group] = (),
) -> None:
    """ValidationError naming what ``request``'s user would grant without holding it: a
    permission, or a group that carries one."""
    editor = request.user
    if editor.is_superuser:
        return
    own = held_by(editor)
    missing = sorted(_names(added_permissions) - own)
    groups = sorted(g.name for g in added_groups if not _names(g.permissions.all()) <= own)
    problems = [f"permission {name}" for name in missing] + [f"group {name}" for name in groups]
    if problems:
        raise ValidationError(
            "You can only grant permissions you hold yourself; not: " + ", ".join(problems) + "."
        )


# The fields of a user or group form that grant permissions: (permissions, groups).
GRANTING_FIELDS = (("user_permissions", "permissions"), ("groups",))


def granting_held_only(form: Any, request: HttpRequest) -> Any:
    """``form`` (a user's or a group's) refusing to add what ``request``'s user does not hold."""

    class GrantingHeldOnly(form):  # type: ignore[misc]  # get_form's class, known at run time
        def clean(self) -> Any:
            cleaned = super().clean()
            permissions, groups = (self._added(names) for names in GRANTING_FIELDS)
            refuse_grants(request, permissions, groups)
            return cleaned

        def _added(self, names: tuple[str, ...]) -> set[Any]:
            """What the form's field of ``names`` (the one it has) adds to the saved row."""
            for name in names:
                if name in self.cleaned_data:
                    before = getattr(self.instance, name).all() if self.instance.pk else ()
                    return set(self.cleaned_data[name] or ()) - set(before)
            return set()

    return GrantingHeldOnly


def named_cleanly(form: Any) -> Any:
    """A group's ``form`` refusing a name with control characters, one that shows as nothing
    and one that reads as another group's, as a tenant's are (Django's Group has no validator
    of ours): "Operators" and "Operators\u200b" were two groups listed alike, and an admin
    granting one picked either. A name kept as it was is not read apart again."""

    class NamedCleanly(form):  # type: ignore[misc]  # get_form's class, known at run time
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if "name" in self.fields:  # as typed: a line break at an end refused, not trimmed
                self.fields["name"].strip = False

        def clean_name(self) -> Any:
            name = self.cleaned_data.get("name")
            if isinstance(name, str):
                name = trim_spaces(name)
                if not name:
                    raise ValidationError(
                        self.fields["name"].error_messages["required"], "required"
                    )
                no_control_characters(name)
                if name != self.instance.name:  # still the stored name: fields not yet set
                    others = Group.objects.exclude(pk=self.instance.pk).exclude(name=name)
                    read_apart(name, others.values_list("pk", "name"), "group")
            return name

    return NamedCleanly


class ContainedUserAdmin(
    OfferedFiltersAdmin[User],
    SelectedIdsAdmin[User],
    CountedDeletionAdmin[User],
    RedactedIdsAdmin[User],
    UserAdmin[User],
):
    """Django's user admin where a staff user with ``auth.change_user`` gets no further than
    their own permissions: before, they could tick their own ``is_superuser``, give themselves
    any permission or group, or set a superuser's password and log in as them.

    Its list filters only as its filters offer: with ``view_user`` alone,
    ``?logentry__isnull=False`` listed the accounts that wrote history entries and
    ``?logentry=7`` the author of entry 7, a log that user may not read. The group filter
    names only the groups of its rows (Django's named every group to whoever views users)."""

    list_filter = ("is_staff", "is_superuser", "is_active", ("groups", RelatedOnlyFieldListFilter))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, "is_superuser")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_act_as(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_act_as(request, obj))

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        return granting_held_only(super().get_form(request, obj, change=change, **kwargs), request)


def may_edit_group(request: HttpRequest, group: Group) -> bool:
    """Whether ``request``'s user may change or delete ``group``: a superuser may; anyone else
    only a group that carries nothing they do not hold themselves (as ``may_act_as``)."""
    editor = request.user
    return editor.is_superuser or _names(group.permissions.all()) <= held_by(editor)


class ContainedGroupAdmin(
    OfferedFiltersAdmin[Group],
    SelectedIdsAdmin[Group],
    CountedDeletionAdmin[Group],
    RedactedIdsAdmin[Group],
    GroupAdmin,
):
    """Django's group admin where nobody adds to a group a permission they do not hold (a
    member with ``auth.change_group`` could otherwise grant themselves anything), nor changes
    or deletes a group that carries one (stripping ``change_tenant`` from the operators' group
    took it from every operator, by someone who never held it).

    Its list offers no filter, so its query string filters on nothing: with ``view_group``
    alone, ``?user=3`` listed the groups of account 3, whom that user may not view."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_edit_group(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_edit_group(request, obj))

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = granting_held_only(super().get_form(request, obj, change=change, **kwargs), request)
        return named_cleanly(form)
