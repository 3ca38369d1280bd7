"""What the tenant commands share with the engine commands: a tenant by the name typed, every
name echoed with its control characters escaped (``ml.text.escape_controls``), so a typed or
stored name can neither start a line nor send an escape sequence to the operator's terminal."""

import os

from django.core.management.base import CommandError

from accounts.models import Tenant
from ml.text import escape_controls


def storable(name: str) -> bool:
    """Whether ``name`` is text a tenant's name can be: an argument that is not UTF-8 (Latin-1's
    "caf\\xe9") reaches Python with surrogates ("caf\\udce9"), which no database query encodes
    (UnicodeEncodeError), and no tenant has."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def tenant_named(name: str) -> Tenant:
    found = Tenant.objects.filter(name=name).first() if storable(name) else None
    if found is None:
        raise CommandError(f'No tenant named "{shown(name)}".')
    return found


def shown(name: str) -> str:
    """A tenant's name as a command prints it; the bytes of a typed one that is not UTF-8 as
    escapes ("caf\\xe9")."""
    if not storable(name):
        name = os.fsencode(name).decode(errors="backslashreplace")
    return escape_controls(name)
