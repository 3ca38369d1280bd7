"""What the admin's delete pages show (a row's Delete, every list's "Delete selected"): the
rows a deletion takes counted per model, never listed row by row, with Django's refusals
(rows that protect the selection, a model whose rows the user may not delete).

Django's own pages load every row the deletion takes and link each one, and its "Delete
selected" form names each selected row again: for a tenant with 500,000 check records (90 days
of a bank's traffic) its page took 40.7 s, 59 MB of HTML and 721 MB more of a worker's memory
on PostgreSQL, and past GUNICORN_TIMEOUT the worker is killed. A list's "Select all" of 100,000
check records took 19.5 s, 17.9 MB and 247 MB more of the worker's peak memory, and its
"Yes, I'm sure" posted 100,003 fields, which Django refuses (400, over
DATA_UPLOAD_MAX_NUMBER_FIELDS): nothing could be deleted. Counted, a page costs one COUNT per
model, whatever the rows (``python -m bench.tenant_delete``, ``python -m bench.bulk_delete``).

Up to ``LISTED`` selected rows (a list page's worth) are still linked one by one, and the
action's form names them; past that the form carries the list's "Select all" (its filter is
the page's address) and the count it showed: a "Yes" that finds another count deletes nothing
and shows the page again with the new one."""

import logging
import operator
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import reduce
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite, helpers
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.utils import model_ngettext, quote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, router, transaction
from django.db.models import Model, QuerySet
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from guard import formatting

log = logging.getLogger(__name__)

# Selected rows a delete page links one by one and the action's form names: a list page's
# worth (Django's list_per_page). Past it they are counted, and the form names the list's filter.
LISTED = 100
# A deletion whose transaction failed (a row, or its history entry, refused by the database).
NOT_DELETED = (
    "Nothing was deleted: the deletion or its history entry could not be written (the server "
    "log has the details). Try again."
)

# The action form's field with the count its page showed (a "Select all" past LISTED rows).
SHOWN = "selected_count"

# Django's get_deleted_objects: the page's list, its summary, the models the user may not
# delete, the rows that protect the selection.
DeletedObjects = tuple[list[Any], dict[str, str], set[str], list[str]]


def collected(model: type[Model], objs: Iterable[Model]) -> Collector:
    """The Collector deleting ``objs`` (rows of ``model``) runs, so that what the pages count
    is what it deletes: it loads the rows it must (signals, SET_NULL below them), deletes the
    others in bulk. Raises ProtectedError or RestrictedError as the deletion would."""
    collector = Collector(using=router.db_for_write(model))
    collector.collect(objs)  # type: ignore[arg-type]  # a list or a QuerySet, as Django's
    return collector


def counted(collector: Collector) -> dict[type[Model], int]:
    """How many rows of each model the deletion takes (models with none left out): those it
    loaded, as loaded, those it deletes in bulk with one COUNT per model."""
    counts = {model: len(rows) for model, rows in collector.data.items()}
    in_bulk: dict[type[Model], list[QuerySet[Any]]] = {}
    for queryset in collector.fast_deletes:
        in_bulk.setdefault(queryset.model, []).append(queryset)
    for model, querysets in in_bulk.items():
        counts[model] = counts.get(model, 0) + reduce(operator.or_, querysets).count()
    return {model: n for model, n in counts.items() if n}


def copies_of(model: type[Model], objs: Any) -> dict[type[Model], int]:
    """How many rows of each model the deletion of ``objs`` takes besides the Collector's:
    those their queryset's ``copies()`` names, deleted by its ``delete`` (a check record's
    capture session and Idempotency-Key answer, liveness.models.CheckQuerySet), one COUNT
    per model."""
    rows = objs
    if not isinstance(objs, QuerySet):
        rows = model._default_manager.filter(pk__in=[obj.pk for obj in objs])
    copies = getattr(rows, "copies", None)
    if copies is None:
        return {}
    counts: dict[type[Model], int] = {}
    for queryset in copies():
        counts[queryset.model] = counts.get(queryset.model, 0) + queryset.count()
    return counts


def rows_of(collector: Collector, model: type[Model]) -> Iterator[Model]:
    """Each row of ``model`` the deletion takes, those it deletes in bulk read in chunks."""
    yield from collector.data.get(model, ())
    for queryset in collector.fast_deletes:
        if queryset.model is model:
            yield from queryset.iterator()


def protecting(error: ProtectedError | RestrictedError) -> list[str]:
    """The rows that keep the selection from being deleted, counted per model."""
    if isinstance(error, ProtectedError):
        rows = error.protected_objects
    else:
        rows = error.restricted_objects
    by_model = Counter(str(row._meta.verbose_name_plural) for row in rows)
    return [f"{capfirst(name)}: {formatting.count(n)}" for name, n in sorted(by_model.items())]


def answers_by_row(model_admin: Any) -> bool:
    """Whether ``model_admin``'s delete permission depends on the row: Django's ignores it
    (ModelBackend has no row permissions); an admin that overrides it (the user and group
    admins keep anyone within their own permissions) is asked of each row."""
    return type(model_admin).has_delete_permission is not admin.ModelAdmin.has_delete_permission


def lacking_delete_permission(
    site: AdminSite, request: HttpRequest, collector: Collector, counts: dict[type[Model], int]
) -> set[str]:
    """The models with rows to delete whose delete permission the user lacks, as Django's page
    finds them: each registered model's admin asked of each row where its answer depends on
    the row, else once (Django asked of each row: 100,000 questions with the same answer)."""
    lacking = set()
    for model in counts:
        if not site.is_registered(model):
            continue
        model_admin = site.get_model_admin(model)
        asked: Iterable[Model | None] = (
            rows_of(collector, model) if answers_by_row(model_admin) else [None]
        )
        if not all(model_admin.has_delete_permission(request, row) for row in asked):
            lacking.add(str(model._meta.verbose_name))
    return lacking


def lacking_delete_permission_alongside(
    site: AdminSite, request: HttpRequest, alongside: dict[type[Model], int]
) -> set[str]:
    """The models of the rows a signal deletes with the selection (``deleted_alongside``)
    whose delete permission the user lacks, asked once per model as of rows the Collector
    takes: a tenant's refusal counts need ``delete_refusal`` as its checks need
    ``delete_livenesscheck``. A model no admin registers (nobody deletes it on its own) needs
    none."""
    return {
        str(model._meta.verbose_name)
        for model in alongside
        if site.is_registered(model)
        and not site.get_model_admin(model).has_delete_permission(request)
    }


def summary(counts: dict[type[Model], int], model: type[Model]) -> dict[str, str]:
    """The page's summary: the selected model first, then every other one by name."""
    named = {str(m._meta.verbose_name_plural): n for m, n in counts.items() if m is not model}
    selected = {str(model._meta.verbose_name_plural): counts.get(model, 0)}
    ordered = {**selected, **dict(sorted(named.items()))}
    return {name: formatting.count(n) for name, n in ordered.items()}


def listing(
    site: AdminSite,
    model: type[Model],
    selected: int,
    rows: list[Model] | None,
    counts: dict[type[Model], int],
) -> list[Any]:
    """The page's list (Django's ``unordered_list``): the ``selected`` rows, each linked to its
    page when they are ``rows`` (at most LISTED), else counted; then what goes with them,
    counted per model: under the row when it is one."""
    plural = str(model._meta.verbose_name_plural)
    head = [f"{capfirst(plural)}: {formatting.count(selected)}"]
    if rows is not None:
        head = [row_link(site, row) for row in rows]
    rest = [f"{capfirst(name)}: {n}" for name, n in list(summary(counts, model).items())[1:]]
    if not rest:
        return head
    if len(head) == 1:
        return [*head, rest]
    return [*head, f"With these {formatting.count(selected)} {plural}:", rest]


def row_link(site: AdminSite, row: Model) -> SafeString | str:
    """``row`` named with its model, linked to its page where it has one (as Django's)."""
    opts = row._meta
    name = capfirst(opts.verbose_name)
    if not site.is_registered(type(row)):
        return f"{name}: {row}"
    try:
        name_of_page = f"{site.name}:{opts.app_label}_{opts.model_name}_change"
        url = reverse(name_of_page, args=[quote(row.pk)])
    except NoReverseMatch:
        return f"{name}: {row}"
    return format_html('{}: <a href="{}">{}</a>', name, url, row)


def deleted_objects(model_admin: Any, objs: Any, request: HttpRequest) -> DeletedObjects:
    """Every project admin's ``get_deleted_objects`` (``objs`` a list or a QuerySet of its
    model): the rows the deletion takes counted per model, the selected ones linked when at
    most LISTED; Django's refusals kept."""
    model = model_admin.model
    selected = objs.count() if isinstance(objs, QuerySet) else len(objs)
    if not selected:
        return [], {}, set(), []
    try:
        collector = collected(model, objs)
    except (ProtectedError, RestrictedError) as error:
        return [], {}, set(), protecting(error)
    counts = counted(collector)
    for copied, n in copies_of(model, objs).items():
        counts[copied] = counts.get(copied, 0) + n
    counts = {copied: n for copied, n in counts.items() if n}
    site = model_admin.admin_site
    lacking = lacking_delete_permission(site, request, collector, counts)
    alongside = {m: n for m, n in model_admin.deleted_alongside(objs).items() if n}
    lacking |= lacking_delete_permission_alongside(site, request, alongside)
    counts |= alongside
    rows = list(objs) if selected <= LISTED else None
    return listing(site, model, selected, rows, counts), summary(counts, model), lacking, []


def selects_across(request: HttpRequest) -> bool:
    """Whether the action's POST is the list's "Select all" (its filter), not named rows."""
    return bool(forms.BooleanField(required=False).clean(request.POST.get("select_across")))


def changed_since_shown(request: HttpRequest, selected: int) -> bool:
    """Whether the POST's "Yes" confirms a count its page showed that is no longer the
    selection's: rows that joined (or left) the list's filter since then."""
    shown = request.POST.get(SHOWN)
    return shown is not None and shown != str(selected)


def log_deleted(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any], n: int) -> None:
    """The history of the deletion: an entry per row (Django's) up to LISTED rows; past that
    one entry with the count and the list's filter (Django's 100,000 entries would load every
    row and write as many)."""
    if n <= LISTED:
        model_admin.log_deletions(request, queryset)
        return
    model = model_admin.model
    author = request.user.pk
    assert author is not None  # the admin serves only users logged in
    filtered = request.GET.urlencode()
    which = f"Selected all of the list filtered by ?{filtered}." if filtered else "Selected all."
    LogEntry.objects.create(
        user_id=author,
        content_type_id=ContentType.objects.get_for_model(model, for_concrete_model=False).pk,
        object_id=None,
        object_repr=f"{formatting.count(n)} {model._meta.verbose_name_plural}"[:200],
        action_flag=DELETION,
        change_message=which,
    )


def delete(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any], n: int) -> None:
    """Delete the selection, its history written in the same transaction: both or neither. One
    that cannot be written (the database refused a row's deletion or its entry) deletes
    nothing, and the page says so: the database's failure is no error of the user's."""
    try:
        with transaction.atomic(using=router.db_for_write(model_admin.model)):
            log_deleted(model_admin, request, queryset, n)
            model_admin.delete_queryset(request, queryset)
    except DatabaseError:
        log.exception("deleting %s selected %s failed", n, model_admin.opts.verbose_name_plural)
        model_admin.message_user(request, NOT_DELETED, messages.ERROR)
        return
    model_admin.message_user(
        request,
        _("Successfully deleted %(count)s %(items)s.")
        % {"count": formatting.count(n), "items": model_ngettext(model_admin.opts, n)},
        messages.SUCCESS,
    )


@admin.action(
    permissions=["delete"], description=gettext_lazy("Delete selected %(verbose_name_plural)s")
)
def delete_selected(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    """Django's "Delete selected" (its page, refusals and messages; registered for every list
    in guard.apps) where the page counts and the deletion never loads the rows: ``len()`` of
    the selection and an entry per row in the history loaded 100,000 check records."""
    found: DeletedObjects = model_admin.get_deleted_objects(queryset, request)
    lacking, protected = found[2], found[3]
    selected = queryset.count()
    if request.POST.get("post") and not protected:
        if lacking:
            raise PermissionDenied
        if not changed_since_shown(request, selected):
            if selected:
                delete(model_admin, request, queryset, selected)
            return None  # the list again
        warn_changed(model_admin, request, selected)
    return confirmation(model_admin, request, queryset, selected, found)


def warn_changed(model_admin: Any, request: HttpRequest, selected: int) -> None:
    """The message above the page shown again: the count confirmed, and the count now."""
    posted = request.POST.get(SHOWN, "")
    # At most 20 digits formatted: int() of over 4,300 raised ValueError (a 500).
    number = posted.isascii() and posted.isdigit() and len(posted) <= 20
    shown = formatting.count(posted) if number else posted[:20]
    model_admin.message_user(
        request,
        f"The selection changed since its page counted it ({shown} then, "
        f"{formatting.count(selected)} now): nothing was deleted. Check the counts and "
        "confirm again, or filter the list (by date) so that new rows do not join it.",
        messages.WARNING,
    )


def confirmation(
    model_admin: Any,
    request: HttpRequest,
    queryset: QuerySet[Any],
    selected: int,
    found: DeletedObjects,
) -> TemplateResponse:
    """Django's confirmation page; its form names the selected rows up to LISTED, past that
    the list's "Select all" (the page's address carries the filter) and the count shown."""
    deleted, counts, lacking, protected = found
    opts = model_admin.model._meta
    objects_name = model_ngettext(queryset)
    named = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)[:1]
    by_filter = bool(named) and selects_across(request) and selected > LISTED
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Cannot delete %(name)s") % {"name": objects_name}
        if lacking or protected
        else _("Delete multiple objects"),
        "subtitle": None,
        "objects_name": str(objects_name),
        "deletable_objects": [deleted],
        "model_count": counts.items(),
        "selected_pks": None if by_filter else list(queryset.values_list("pk", flat=True)),
        "select_across": {"named": named[0], "count": selected} if by_filter else None,
        "shown_field": SHOWN,
        "perms_lacking": lacking,
        "protected": protected,
        "opts": opts,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    templates = [
        f"admin/{opts.app_label}/{opts.model_name}/delete_selected_confirmation.html",
        f"admin/{opts.app_label}/delete_selected_confirmation.html",
        "admin/delete_selected_confirmation.html",
    ]
    return TemplateResponse(
        request, model_admin.delete_selected_confirmation_template or templates, context
    )
