"""System checks on the tenants' rows. Tagged ``database``: ``migrate`` (and so
``bin/entrypoint``) runs them, as does ``manage.py check --database default``.

- every tenant's profile is one the engine has (``ml.profiles.PROFILES``): a profile removed
  from the engine, or renamed, while tenants still name it would make each of their checks
  fail (an error: the start stops);
- no tenant's rate limit is 0, which the model refuses: such a row, saved before the model did,
  refuses its every call with 429. It is left as it is (read as "no limit", a tenant someone
  meant to stop would be served), and named at each start (a warning: the other tenants are
  served).

Both read the table only once it has every column the model has: on an empty database
``migrate`` runs them before its first migration, and each query of a missing table was an
``ERROR: relation "accounts_tenant" does not exist`` in PostgreSQL's server log.
"""

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connections

from ml.profiles import PROFILES


def tenants_readable() -> bool:
    """Whether the tenants' table has the model's columns (False before ``migrate`` has
    made them, or while the database cannot be reached: nothing to check)."""
    from accounts.models import Tenant

    connection = connections[Tenant.objects.db]
    table = Tenant._meta.db_table
    try:
        with connection.cursor() as cursor:
            if table not in connection.introspection.table_names(cursor):
                return False
            described = connection.introspection.get_table_description(cursor, table)
    except DatabaseError:
        return False
    columns = {column.name for column in described}
    return all(field.column in columns for field in Tenant._meta.concrete_fields)


@register(Tags.database)
def tenant_profiles_exist(databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not databases or not tenants_readable():
        return []
    from accounts.models import Tenant

    try:
        unknown = sorted(
            set(Tenant.objects.exclude(profile__in=PROFILES).values_list("profile", flat=True))
        )
    except DatabaseError:  # unreachable, or gone meanwhile: nothing to check
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
    if not databases or not tenants_readable():
        return []
    from accounts.models import Tenant

    try:
        names = list(
            Tenant.objects.filter(rate_limit_per_minute=0)
            .order_by("name")
            .values_list("name", flat=True)
        )
    except DatabaseError:  # unreachable, or gone meanwhile: nothing to check
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
