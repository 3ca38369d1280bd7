"""One module per management command (the engine's, the tenants', guard's)."""

from io import StringIO

from django.core.management import call_command


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()
