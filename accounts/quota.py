"""Atomic quota reservation: one conditional UPDATE, safe on SQLite and PostgreSQL."""

from django.db.models import F, Q, QuerySet

from accounts.models import Tenant


def reserve(tenant_id: int) -> bool:
    """Take one unit of the tenant's quota; False when the limit is reached."""
    under_limit = Q(request_limit__isnull=True) | Q(requests_used__lt=F("request_limit"))
    updated = (
        Tenant.objects.filter(pk=tenant_id)
        .filter(under_limit)
        .update(requests_used=F("requests_used") + 1)
    )
    return updated == 1


def has_room(tenant: Tenant) -> bool:
    """Whether ``tenant`` (as loaded) had quota left; a hint, :func:`reserve` decides."""
    return tenant.request_limit is None or tenant.requests_used < tenant.request_limit


def reset(queryset: QuerySet[Tenant] | None = None) -> int:
    """Set requests_used to 0 for the given tenants (all by default); returns the count."""
    tenants = Tenant.objects.all() if queryset is None else queryset
    return tenants.update(requests_used=0)
