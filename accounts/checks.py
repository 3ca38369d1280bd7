"""System checks on the tenants' rows. Tagged ``database``: ``migrate`` (and so
``bin/entrypoint``) runs them, as does ``manage.py check --database default``.

- every tenant's profile is one the engine has (``ml.profiles.PROFILES``): a profile removed
  from the engine, or renamed, while tenants still name it would make each of their checks
  fail (an error: the start stops);
- no tenant's rate limit is 0, which the model refuses: such a row, saved before the model did,
  refuses its every call with 429. It is left as it is (read as "no limit", a tenant someone
  meant to stop would be served), and named at each start (a warning: the other tenants are
  served).
"""

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

from ml.profiles import PROFILES


@register(Tags.database)
def tenant_profiles_exist(databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not databases:
        return []
    from accounts.models import Tenant

    try:
        unknown = sorted(
            set(Tenant.objects.exclude(profile__in=PROFILES).values_list("profile", flat=True))
        )
    except DatabaseError:  # not migrated yet: nothing to check
        return []
    return [
        Error(
            f"Tenants have the profile {name!r}, which the engine does not have "
            f"(profiles: {', '.join(PROFILES)}).",
            hint="Move those tenants to an existing profile, or restore the profile in "
            "ml/profiles.py.",
            obj=Tenant,
            id="accounts.E001",
        )
        for name in unknown
    ]


@register(Tags.database)
def tenant_rate_limits_allow_calls(databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not databases:
        return []
    from accounts.models import Tenant

    try:
        names = list(
            Tenant.objects.filter(rate_limit_per_minute=0)
            .order_by("name")
            .values_list("name", flat=True)
        )
    except DatabaseError:  # not migrated yet: nothing to check
        return []
    if not names:
        return []
    return [
        Warning(
            f"{len(names)} tenant(s) have a rate limit of 0 per minute, which refuses every "
            f"call with 429: {', '.join(map(repr, names))}.",
            hint="In the admin, blank the rate limit for no limit, or set 1 or more; to stop "
            "a tenant, deactivate it.",
            obj=Tenant,
            id="accounts.W001",
        )
    ]
