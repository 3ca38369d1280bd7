"""Figures for people, one way on every admin page: rates as percentages (with their 95 %
interval), scores and thresholds to 3 or 4 places, latencies in ms, counts with thousands
separators, and the exact stored value in a ``title`` for whoever needs it. Below every app
that has admin pages (calibration and liveness import it; templates ``{% load facia_figures %}``).

Every function takes ``None`` or a non-finite value (a rate over an empty class is NaN, stored
as null) and answers ``MISSING`` for it."""

import math
from collections.abc import Sequence
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

MISSING = "-"
SCORE_PLACES = 4  # a threshold or score: 4 places tell 0.7247 from 0.7250; more is noise
RATE_PLACES = 1  # 12.3 %: an interval over a few sources is wider than 0.1 point


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is absent, not a number or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def decimal(value: Any, places: int = SCORE_PLACES) -> str:
    """A score or threshold: ``0.7246717604179921`` -> ``"0.7247"`` (3 or 4 places)."""
    number = finite(value)
    return MISSING if number is None else f"{number:.{places}f}"


def percent(value: Any, places: int = RATE_PLACES) -> str:
    """A rate (0..1) as a percentage: ``0.2431`` -> ``"24.3 %"``."""
    number = finite(value)
    return MISSING if number is None else f"{number * 100:.{places}f} %"


def percent_interval(values: Sequence[Any] | None, places: int = RATE_PLACES) -> str:
    """``[rate, low, high]`` (a 95 % interval) -> ``"24.3 % (11.0-40.2 %)"``; the rate alone
    when the interval is absent, ``MISSING`` when the rate is."""
    rate, low, high = (list(values or []) + [None, None, None])[:3]
    shown = percent(rate, places)
    lo, hi = finite(low), finite(high)
    if shown == MISSING or lo is None or hi is None:
        return shown
    return f"{shown} ({lo * 100:.{places}f}-{hi * 100:.{places}f} %)"


def latency_ms(value: Any) -> str:
    """Milliseconds for people: ``19.752186999994592`` -> ``"19.8 ms"``, ``1234.5`` ->
    ``"1,234 ms"`` (a tenth of a millisecond matters below 100 ms only)."""
    number = finite(value)
    if number is None:
        return MISSING
    return f"{number:,.1f} ms" if abs(number) < 100 else f"{number:,.0f} ms"


def count(value: Any) -> str:
    """An integer count with thousands separators: ``12345`` -> ``"12,345"``."""
    return MISSING if value is None else f"{int(value):,}"


def exact(value: Any) -> str:
    """The stored value, every digit (``repr``): what a ``title`` attribute carries."""
    number = finite(value)
    return MISSING if number is None else repr(number)


def with_exact(shown: str, value: Any) -> SafeString:
    """``shown`` with the exact stored value as its tooltip (and for a screen reader)."""
    return format_html('<span class="figure" title="{}">{}</span>', exact(value), shown)
