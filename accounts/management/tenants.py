"""What the tenant commands share with the engine commands: a tenant by the name typed, every
name echoed with its control characters escaped (``ml.text.escape_controls``), so a typed or
stored name can neither start a line nor send an escape sequence to the operator's terminal."""

from django.core.management.base import CommandError

from accounts.models import Tenant
from ml.text import escape_controls


def tenant_named(name: str) -> Tenant:
    found = Tenant.objects.filter(name=name).first()
    if found is None:
        raise CommandError(f'No tenant named "{escape_controls(name)}".')
    return found


def shown(name: str) -> str:
    """A tenant's name as a command prints it."""
    return escape_controls(name)
