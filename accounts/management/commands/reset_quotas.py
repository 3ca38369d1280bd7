from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit
from accounts.management.tenants import shown, storable
from accounts.models import Tenant


class Command(BaseCommand):
    help = "Set requests used back to 0 for all tenants, or for those named with --tenant."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--tenant",
            action="append",
            default=[],
            metavar="NAME",
            help="tenant name (repeatable); default: every tenant",
        )

    def handle(self, *args: Any, tenant: list[str], **options: Any) -> None:
        tenants = Tenant.objects.all()
        if tenant:
            named = Tenant.objects.filter(name__in=[n for n in tenant if storable(n)])
            missing = sorted(set(tenant) - set(named.values_list("name", flat=True)))
            if missing:
                raise CommandError(f"No tenant named: {', '.join(map(shown, missing))}")
            tenants = tenants.filter(name__in=tenant)
        # the resets and their history entries, all or none (as create_tenant's)
        with transaction.atomic():
            before = Tenant.reset_quotas(tenants)
            for found in before:
                audit.by_command(
                    found, "reset_quotas", f"Reset quota ({found.requests_used} used before)."
                )
        self.stdout.write(f"Quota reset for {len(before)} tenant(s).")
