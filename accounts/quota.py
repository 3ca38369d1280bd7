"""Atomic quota reservation: one conditional UPDATE, safe on SQLite and PostgreSQL."""

from django.db import connection
from django.db.models import QuerySet

from accounts.models import Tenant


def reserve(tenant_id: int) -> bool:
    """Take one unit of the tenant's quota; False when the limit is reached."""
    # The conditional UPDATE the ORM writes for filter(pk, under limit).update(F + 1), as one
    # fixed statement: building it through the ORM cost 0.3 ms per request (bench.hotpath).
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE_SQL.format(table=Tenant._meta.db_table), [tenant_id])
        return cursor.rowcount == 1


_RESERVE_SQL = (
    "UPDATE {table} SET requests_used = requests_used + 1 "
    "WHERE id = %s AND (request_limit IS NULL OR requests_used < request_limit)"
)


def has_room(tenant: Tenant) -> bool:
    """Whether ``tenant`` (as loaded) had quota left; a hint, :func:`reserve` decides."""
    return tenant.request_limit is None or tenant.requests_used < tenant.request_limit


def reset(queryset: QuerySet[Tenant] | None = None) -> int:
    """Set requests_used to 0 for the given tenants (all by default); returns the count."""
    tenants = Tenant.objects.all() if queryset is None else queryset
    return tenants.update(requests_used=0)
