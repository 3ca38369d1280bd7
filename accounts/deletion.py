"""What deleting tenants deletes with them, counted per model for the admin's delete pages
(the tenant page's Delete and the list's "Delete selected tenants"), never listed row by row.

Django's own pages load every row the deletion takes and link each one: for a tenant with
500,000 check records (90 days of a bank's traffic) its page takes 40.7 s, 59 MB of HTML and
721 MB more of a worker's memory on PostgreSQL, and its "Yes, I'm sure" builds the list again,
so past GUNICORN_TIMEOUT (about 750,000 rows) the worker is killed and the tenant cannot be
deleted from the admin. Counted, the page costs one COUNT per model, whatever the rows: 0.10 s
and 6 KB for 200,000 check records on SQLite, against Django's 30.6 s and 26 MB (``python -m
bench.tenant_delete``)."""

import operator
from collections import Counter
from functools import reduce
from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.utils import quote
from django.db import router
from django.db.models import Model, QuerySet
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from accounts.models import Tenant
from guard import formatting


def rows_deleted_with(tenants: list[Tenant]) -> dict[type[Model], int]:
    """How many rows of each model deleting ``tenants`` deletes (the tenants included; models
    with none left out), found by the Collector their deletion runs, so that the counts are of
    what it deletes: the rows it loads (the hash_ids, whose capture sessions' credential it
    sets to null) are counted as loaded, those it deletes in bulk with one COUNT per model. Raises
    ProtectedError or RestrictedError as the deletion would."""
    collector = Collector(using=router.db_for_write(Tenant))
    collector.collect(tenants)
    counts = {model: len(rows) for model, rows in collector.data.items()}
    in_bulk: dict[type[Model], list[QuerySet[Any]]] = {}
    for queryset in collector.fast_deletes:
        in_bulk.setdefault(queryset.model, []).append(queryset)
    for model, querysets in in_bulk.items():
        counts[model] = counts.get(model, 0) + reduce(operator.or_, querysets).count()
    return {model: n for model, n in counts.items() if n}


def protecting(error: ProtectedError | RestrictedError) -> list[str]:
    """The rows that keep the tenants from being deleted, counted per model."""
    if isinstance(error, ProtectedError):
        rows = error.protected_objects
    else:
        rows = error.restricted_objects
    by_model = Counter(str(row._meta.verbose_name_plural) for row in rows)
    return [f"{capfirst(name)}: {formatting.count(n)}" for name, n in sorted(by_model.items())]


def lacking_delete_permission(
    site: AdminSite, request: HttpRequest, counts: dict[type[Model], int], tenants: list[Tenant]
) -> set[str]:
    """The models with rows to delete whose delete permission the user lacks, as Django's page
    finds them: each registered model's admin is asked, for each tenant, and once for the rows
    of the other models (Django asked for each row: none of ours answers by row)."""
    lacking = set()
    for model in counts:
        if not site.is_registered(model):
            continue
        model_admin = site.get_model_admin(model)
        rows: list[Model | None] = [*tenants] if model is Tenant else [None]
        if not all(model_admin.has_delete_permission(request, row) for row in rows):
            lacking.add(str(model._meta.verbose_name))
    return lacking


def summary(counts: dict[type[Model], int]) -> dict[str, str]:
    """The page's summary: the tenants first, then every other model by name."""
    named = {str(m._meta.verbose_name_plural): n for m, n in counts.items() if m is not Tenant}
    tenants = {str(Tenant._meta.verbose_name_plural): counts.get(Tenant, 0)}
    ordered = {**tenants, **dict(sorted(named.items()))}
    return {name: formatting.count(n) for name, n in ordered.items()}


def listing(site: AdminSite, tenants: list[Tenant], counts: dict[type[Model], int]) -> list[Any]:
    """The page's list (Django's ``unordered_list``): each tenant with a link to its page, then
    what goes with them, counted per model: under the tenant when it is one."""
    links = [tenant_link(site, tenant) for tenant in tenants]
    rest = [f"{capfirst(name)}: {n}" for name, n in list(summary(counts).items())[1:]]
    if not rest:
        return links
    if len(links) == 1:
        return [*links, rest]
    return [*links, f"With these {len(links)} tenants:", rest]


def tenant_link(site: AdminSite, tenant: Tenant) -> SafeString:
    url = reverse(f"{site.name}:accounts_tenant_change", args=[quote(tenant.pk)])
    return format_html('{}: <a href="{}">{}</a>', capfirst(Tenant._meta.verbose_name), url, tenant)
