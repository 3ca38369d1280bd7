"""``{% load facia_figures %}``: the filters of ``guard.formatting`` for templates.

{{ rate|percent }}            24.3 %
{{ figures.APCER|percent_ci }} 24.3 % (11.0-40.2 %)   ([rate, low, high])
{{ threshold|decimal }}       0.7247    ({{ score|decimal:3 }} 0.725)
{{ check.latency_ms|ms }}     19.8 ms
{{ hits|count }}              12,345
{{ threshold|exact }}         0.7246717604179921
{{ threshold|decimal_exact }} <span title="0.7246717604179921">0.7247</span>
"""

from typing import Any

from django import template
from django.utils.safestring import SafeString

from guard import formatting

register = template.Library()

register.filter("percent", formatting.percent)
register.filter("percent_ci", formatting.percent_interval)
register.filter("ms", formatting.latency_ms)
register.filter("count", formatting.count)
register.filter("exact", formatting.exact)


@register.filter
def decimal(value: Any, places: int = formatting.SCORE_PLACES) -> str:
    return formatting.decimal(value, int(places))


@register.filter
def decimal_exact(value: Any, places: int = formatting.SCORE_PLACES) -> SafeString:
    """The rounded value with the exact one in its title."""
    return formatting.with_exact(formatting.decimal(value, int(places)), value)
