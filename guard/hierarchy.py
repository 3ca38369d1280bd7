"""A list's date hierarchy (its years, months or days that have rows) found by probing each
period as a range of the field's index, not by truncating every row's date.

Django asks the list's queryset for ``datetimes(field, kind)`` (``dates`` for a date field):
``SELECT DISTINCT`` of a truncated date over every row in view, which on SQLite is a Python
function called per row, no index. The check records' list took 7.2 s in that query alone over
247,000 records (90 days of 2,800 a day), its worker's other requests waiting meanwhile; as
ranges of the index (30 days of a month) 0.16 s, on the same busy machine.
"""

import functools
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import islice
from typing import Any, Literal, TypeVar

from django.conf import settings
from django.contrib import admin
from django.db.models import Exists, Max, Min, Model, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils import timezone

_M = TypeVar("_M", bound=Model)
Order = Literal["ASC", "DESC"]
DateKind = Literal["year", "month", "week", "day"]
DatetimeKind = Literal["year", "month", "week", "day", "hour", "minute", "second"]

KINDS = ("year", "month", "day")
# More periods than this (a year of days) and Django's own query is asked: the hierarchy asks
# for at most 31 (the days of a month), 12 months or the years its rows span.
MAX_PROBES = 366


def _start(day: date, kind: str) -> date:
    if kind == "year":
        return day.replace(month=1, day=1)
    return day.replace(day=1) if kind == "month" else day


def _next(start: date, kind: str) -> date | None:
    """The start of the period after ``start``'s; None past the calendar's end."""
    try:
        if kind == "year":
            return start.replace(year=start.year + 1)
        if kind == "month":
            return (start + timedelta(days=31)).replace(day=1)
        return start + timedelta(days=1)
    except (OverflowError, ValueError):
        return None


def periods(first: date, last: date, kind: str) -> Iterator[tuple[date, date | None]]:
    """Each period of ``kind`` from ``first``'s to ``last``'s: its start and the next's."""
    start: date | None = _start(first, kind)
    while start is not None and start <= last:
        following = _next(start, kind)
        yield start, following
        start = following


class IndexedDates(QuerySet[_M]):
    """``dates`` and ``datetimes`` (ascending, the current time zone: what the hierarchy asks)
    as one ``exists()`` per period, each a range of the field; any other call is Django's."""

    def dates(self, field_name: str, kind: DateKind, order: Order = "ASC") -> Any:
        found = self._probed(field_name, kind, None) if order == "ASC" else None
        return super().dates(field_name, kind, order) if found is None else found

    def datetimes(
        self,
        field_name: str,
        kind: DatetimeKind,
        order: Order = "ASC",
        tzinfo: tzinfo | None = None,
    ) -> Any:
        found = None
        if order == "ASC" and tzinfo is None and settings.USE_TZ:
            found = self._probed(field_name, kind, timezone.get_current_timezone())
        return super().datetimes(field_name, kind, order, tzinfo) if found is None else found

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The hierarchy's first and last dates (``first=Min(f), last=Max(f)``) as the two ends
        of the field's index, when the list is not filtered: SQLite walks the index for a lone
        MIN or MAX but reads every row for both in one query (0.42 s over 247,000 records,
        0.1 ms as two). Any other aggregate is Django's."""
        field_name = _first_and_last(args, kwargs)
        # Filtered, the ends are the first matching rows along the index: a rare value's are
        # found only at the end of a full walk each, where one query reads the rows once.
        if field_name is None or self.query.where:
            return super().aggregate(*args, **kwargs)
        rows = self.filter(**{f"{field_name}__isnull": False})
        first, last = (
            rows.order_by(order).values_list(field_name, flat=True).first()
            for order in (field_name, f"-{field_name}")
        )
        return {"first": first, "last": last}

    def _probed(self, field_name: str, kind: str, zone: tzinfo | None) -> list[Any] | None:
        """The periods of ``kind`` that have rows, as Django lists them (a date, or the
        period's start in ``zone``); None when there are more than MAX_PROBES to probe."""
        if kind not in KINDS:
            return None
        rows = self.filter(**{f"{field_name}__isnull": False})
        span = self._span(rows, field_name, zone)
        if span is None:
            return []
        spans = list(islice(periods(*span, kind), MAX_PROBES + 1))
        if len(spans) > MAX_PROBES:
            return None
        # Each period a range of a fresh query, the list's own filters in a subquery: SQLite
        # walks the index by the first bounds of a field its WHERE names, so the month's, not
        # the day's, when the list is a month (the 29th's probe 98.7 ms, 0.1 ms this way).
        listed = Exists(rows.filter(pk=OuterRef("pk")))
        fresh = self.model._base_manager.using(self.db)
        found = []
        for start, end in spans:
            bounds = {f"{field_name}__gte": self._bound(start, zone)}
            if end is not None:
                bounds[f"{field_name}__lt"] = self._bound(end, zone)
            if fresh.filter(**bounds).filter(listed).exists():
                found.append(self._bound(start, zone))
        return found

    @classmethod
    def _span(
        cls, rows: QuerySet[Any], field_name: str, zone: tzinfo | None
    ) -> tuple[date, date] | None:
        """The days of the first and the last row (two ends of the index); None: no row."""
        ends = [
            rows.order_by(order).values_list(field_name, flat=True).first()
            for order in (field_name, f"-{field_name}")
        ]
        first, last = ends
        if first is None or last is None:
            return None
        return cls._day(first, zone), cls._day(last, zone)

    @staticmethod
    def _day(value: date | datetime, zone: tzinfo | None) -> date:
        if isinstance(value, datetime):
            return (
                timezone.localtime(value, zone).date() if timezone.is_aware(value) else value.date()
            )
        return value

    @staticmethod
    def _bound(day: date, zone: tzinfo | None) -> date | datetime:
        return day if zone is None else datetime.combine(day, time(), tzinfo=zone)


def _first_and_last(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The field of ``aggregate(first=Min(f), last=Max(f))``, as Django's date hierarchy asks
    it; None for any other aggregate."""
    first, last = kwargs.get("first"), kwargs.get("last")
    if args or set(kwargs) != {"first", "last"}:
        return None
    if not (isinstance(first, Min) and isinstance(last, Max)):
        return None
    names = {
        getattr(expression, "name", None)
        for aggregate in (first, last)
        for expression in aggregate.get_source_expressions()
        if expression is not None  # Django 5.2's slot for an aggregate's ORDER BY
    }
    if len(names) != 1 or first.filter is not None or last.filter is not None:
        return None
    name = names.pop()
    return name if isinstance(name, str) else None


@functools.cache
def indexed(queryset_class: type[QuerySet[Any]]) -> type[QuerySet[Any]]:
    """``queryset_class`` with :class:`IndexedDates`' ``dates`` and ``datetimes``, the rest
    its own: a model's queryset may define more (liveness.models.CheckQuerySet's ``delete``
    takes the rows that copy a check record; a plain IndexedDates in its place would have the
    list's "Delete selected" leave them)."""
    if issubclass(queryset_class, IndexedDates):
        return queryset_class
    if queryset_class is QuerySet:
        return IndexedDates
    return type(f"Indexed{queryset_class.__name__}", (IndexedDates, queryset_class), {})


class IndexedDateHierarchyAdmin(admin.ModelAdmin[_M]):
    """A list with a ``date_hierarchy`` lists its periods through :class:`IndexedDates`."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[_M]:
        rows = super().get_queryset(request)
        if not self.date_hierarchy:
            return rows
        probed = rows._chain()  # type: ignore[attr-defined]  # private: not in django-stubs
        probed.__class__ = indexed(type(rows))
        return probed  # type: ignore[no-any-return]  # _chain is untyped
