"""System check: every tenant's profile is one the engine has (``ml.profiles.PROFILES``).

A profile removed from the engine, or renamed, while tenants still name it would make each of
their checks fail. Tagged ``database``: ``migrate`` (and so ``bin/entrypoint``) runs it, as
does ``manage.py check --database default``.
"""

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
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
