"""The tenant's challenge fields as docs/operator/admin.md and docs/integrator/sessions.md give
them are the model's: the challenge modes, and `challenge_band`'s default and range (its
validators). A field changed on one side only fails here."""

import re

from django.core.validators import MaxValueValidator, MinValueValidator

from accounts.admin import AUDITED_FIELDS
from accounts.models import CHALLENGES, Tenant
from tests.conftest import REPO

DOCS = REPO / "docs"


def flat(page: str) -> str:
    return re.sub(r"\s+", " ", (DOCS / page).read_text(encoding="utf-8"))


def band() -> tuple[float, float, float]:
    """challenge_band's (default, lowest, highest) as the model defines them."""
    field = Tenant._meta.get_field("challenge_band")
    low = next(v.limit_value for v in field.validators if isinstance(v, MinValueValidator))
    high = next(v.limit_value for v in field.validators if isinstance(v, MaxValueValidator))
    return float(field.default), float(low), float(high)


def test_admin_md_gives_the_challenge_modes() -> None:
    shown = re.search(r"`challenge` (\w+), (\w+) \(.*?\) or (\w+) \(", flat("operator/admin.md"))
    assert shown is not None
    assert shown.groups() == CHALLENGES


def test_admin_md_gives_the_bands_default_and_range() -> None:
    shown = re.search(
        r"`challenge_band` logits of the threshold, ([\d.]+) to ([\d.]+), default ([\d.]+)",
        flat("operator/admin.md"),
    )
    assert shown is not None
    low, high, default = map(float, shown.groups())
    assert (default, low, high) == band()


def test_sessions_md_gives_the_bands_default_and_range() -> None:
    shown = re.search(
        r"default ([\d.]+), \[how it was chosen\]\([^)]*\); admin, ([\d.]+) to ([\d.]+)\)",
        flat("integrator/sessions.md"),
    )
    assert shown is not None
    assert tuple(map(float, shown.groups())) == band()


# How admin.md's audit trail names each audited field (both limits are "limits").
AUDIT_WORDS = {
    "is_active": "active flag",
    "request_limit": "limits",
    "rate_limit_per_minute": "limits",
    "threshold": "threshold",
    "profile": "profile",
    "crop_policy": "crop policy",
    "challenge": "challenge",
    "challenge_band": "challenge band",
}


def test_admin_md_names_every_audited_field() -> None:
    """The audit trail's list of fields written with their old and new values is
    ``AUDITED_FIELDS`` (a field audited and not in the list, or not worded here, fails)."""
    listed = re.search(
        r"quota reset \(with the count before\), (.*?) \(old → new value\)",
        flat("operator/admin.md"),
    )
    assert listed is not None
    named = set(re.split(r", | and ", listed[1]))
    assert named == {AUDIT_WORDS[field] for field in AUDITED_FIELDS}
