from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import audit
from accounts.management.tenants import shown, tenant_named
from accounts.models import HashId


class Command(BaseCommand):
    help = "Issue a new hash_id for a tenant and print it (the last line of output)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("tenant", help="tenant name")

    def handle(self, *args: Any, tenant: str, **options: Any) -> None:
        record = tenant_named(tenant)
        # the hash_id and its history entry, both or neither: printed only once both are kept
        with transaction.atomic():
            issued = HashId.issue(record)
            audit.by_command(record, "issue_hash_id", f"Issued hash_id {issued.record.prefix}…")
        self.stdout.write(f"New hash_id for {shown(record.name)}, shown only now:")
        self.stdout.write(issued.secret)
