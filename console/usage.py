"""A tenant's daily checks (live, spoof, refused by the gates) and its 401 and 429 answers,
over a date range, as a server-rendered SVG bar chart and as CSV."""

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, DateField, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Tenant
from guard.models import Refusal
from liveness.models import LivenessCheck, created_on

DAYS = 30
MAX_DAYS = 366
CSV_COLUMNS = ("day", "live", "spoof", "refused_422", "refused_401", "refused_429")
SERIES = (("live", "#2e7d32"), ("spoof", "#c62828"), ("refused", "#9e9e9e"))
WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 50, 10, 20, 40


@dataclass(frozen=True)
class Day:
    day: date
    live: int = 0
    spoof: int = 0
    refused: int = 0
    unauthorized: int = 0  # 401
    throttled: int = 0  # 429: quota or rate limit

    @property
    def total(self) -> int:
        """The checks that reached the engine (the chart's bars)."""
        return self.live + self.spoof + self.refused

    def csv_row(self) -> tuple[str | int, ...]:
        return (
            f"{self.day:%Y-%m-%d}",
            self.live,
            self.spoof,
            self.refused,
            self.unauthorized,
            self.throttled,
        )


@dataclass(frozen=True)
class Span:
    """Whole UTC days, ``first`` to ``last`` included."""

    first: date
    last: date

    @classmethod
    def ending(cls, last: date | None = None, days: int = DAYS) -> "Span":
        last = last or timezone.now().date()
        return cls(last - timedelta(days=days - 1), last)

    @classmethod
    def from_query(cls, query: Mapping[str, str], today: date | None = None) -> "Span":
        """``from`` and ``to`` (YYYY-MM-DD) of a query string; the last 30 days by default,
        at most MAX_DAYS, in order whichever way round they came."""
        default = cls.ending(today)
        first = _parse(query.get("from")) or default.first
        last = _parse(query.get("to")) or default.last
        first, last = min(first, last), max(first, last)
        # By ordinal: ``last - timedelta`` overflows within MAX_DAYS of 0001-01-01 (a 500).
        earliest = date.fromordinal(max(1, last.toordinal() - (MAX_DAYS - 1)))
        return cls(max(first, earliest), last)

    def days(self) -> list[date]:
        return [self.first + timedelta(n) for n in range((self.last - self.first).days + 1)]


def _parse(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _refusals(tenant: Tenant, span: Span) -> dict[tuple[date, int], int]:
    rows = (
        Refusal.objects.filter(tenant_id=tenant.pk, day__gte=span.first, day__lte=span.last)
        .values("day", "status")
        .annotate(hits=Sum("hits"))
    )
    return {(row["day"], row["status"]): row["hits"] for row in rows}


def daily_usage(tenant: Tenant, span: Span | None = None) -> list[Day]:
    """One entry per day of ``span`` (the last 30 days, UTC), oldest first, zeros included."""
    span = span or Span.ending()
    rows = (
        LivenessCheck.objects.filter(created_on(span.first, span.last), tenant=tenant)
        # The UTC day (the database's session is in UTC; SQLite stores UTC text): date() in
        # SQLite's C, where TruncDate called a Python function per row, 1.23 -> 0.21 s for
        # the 30 days of a tenant with 83,000 checks in them.
        .annotate(day=Cast("created_at", DateField()))
        .values("day")
        .annotate(
            live=Count("pk", filter=Q(is_live=True)),
            spoof=Count("pk", filter=Q(is_live=False)),
            refused=Count("pk", filter=Q(is_live__isnull=True)),
        )
    )
    checks = {row["day"]: (row["live"], row["spoof"], row["refused"]) for row in rows}
    refused = _refusals(tenant, span)
    return [
        Day(d, *checks.get(d, (0, 0, 0)), refused.get((d, 401), 0), refused.get((d, 429), 0))
        for d in span.days()
    ]


def usage_csv(days: list[Day]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(day.csv_row() for day in days)
    return out.getvalue()


def _nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (and 1)."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _bars(days: list[Day], y_max: int) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(days)
    parts = []
    for index, day in enumerate(days):
        x = LEFT + index * slot + slot * 0.15
        base = TOP + plot_h
        for name, colour in SERIES:
            count = getattr(day, name)
            if not count:
                continue
            height = plot_h * count / y_max
            base -= height
            parts.append(
                f'<rect class="bar {name}" x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{day.day:%Y-%m-%d} {name}: '
                f"{count}</title></rect>"
            )
        if index % max(1, len(days) // 6) == 0 or index == len(days) - 1:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{day.day:%m-%d}</text>'
            )
    return parts


def _axes(y_max: int) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{y_max * fraction:g}</text>'
        )
    return parts


def _legend() -> list[str]:
    parts = []
    for index, (name, colour) in enumerate(SERIES):
        x = LEFT + index * 90
        parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 5}">{name}</text>')
    return parts


def usage_svg(days: list[Day], title: str) -> str:
    """A stacked bar chart, inline SVG, no script and no external asset."""
    y_max = _nice_max(max((d.total for d in days), default=0))
    body = _axes(y_max) + _bars(days, y_max) + _legend()
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="usage-chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="11"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )
