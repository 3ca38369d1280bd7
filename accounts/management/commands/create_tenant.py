import math
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit
from accounts.management.tenants import shown, storable
from accounts.models import (
    CHALLENGES,
    DEFAULT_CHALLENGE_BAND,
    DEFAULT_THRESHOLD,
    MAX_CHALLENGE_BAND,
    NO_CHALLENGE,
    HashId,
    Tenant,
)
from guard.validators import no_control_characters
from ml.text import trim_spaces


def added_message(tenant: Tenant) -> str:
    """The history's "Added." says the challenge when there is one, as a change would."""
    if tenant.challenge == NO_CHALLENGE:
        return "Added."
    return f"Added with challenge {tenant.challenge}."


class Command(BaseCommand):
    help = "Create a tenant and print its first hash_id (the last line of output)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--limit", type=int, default=None, help="request limit (default: none)")
        parser.add_argument(
            "--threshold",
            type=float,
            default=DEFAULT_THRESHOLD,
            help=f"0..1 (default {DEFAULT_THRESHOLD})",
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="requests per minute, at least 1 (default: none)",
        )
        parser.add_argument(
            "--challenge",
            choices=CHALLENGES,
            default=NO_CHALLENGE,
            help="capture sessions' active challenge (default: none)",
        )
        parser.add_argument(
            "--challenge-band",
            type=float,
            default=DEFAULT_CHALLENGE_BAND,
            help=f"when_unsure: logits either side of the threshold, 0..{MAX_CHALLENGE_BAND:g} "
            f"(default {DEFAULT_CHALLENGE_BAND})",
        )

    def handle(
        self, *args: Any, name: str, limit: int | None, threshold: float, **options: Any
    ) -> None:
        name = trim_spaces(name)  # as the model does; a line break or tab at an end is refused
        try:  # before the name is echoed in any message
            no_control_characters(name)
        except ValidationError as exc:
            raise CommandError(f"name: {' '.join(exc.messages)}") from exc
        if not storable(name):
            raise CommandError(
                f'name: "{shown(name)}" is not UTF-8 text: type it in a UTF-8 terminal.'
            )
        if Tenant.objects.filter(name=name).exists():
            raise CommandError(f'Tenant "{name}" already exists; use issue_hash_id for a new key.')
        if limit is not None and limit < 0:
            raise CommandError("--limit must be 0 or more.")
        if math.isnan(threshold):  # passes the model's range validators, then fails NOT NULL
            raise CommandError("--threshold must be a number from 0 to 1.")
        if math.isnan(options.get("challenge_band", 0.0)):  # as the threshold's NaN
            raise CommandError(
                f"--challenge-band must be a number from 0 to {MAX_CHALLENGE_BAND:g}."
            )
        rate = options.get("rate_limit")
        if rate is not None and rate < 1:
            raise CommandError(
                "--rate-limit must be 1 or more: leave it out for no limit; to stop a tenant, "
                "deactivate it in the admin."
            )
        tenant = Tenant(
            name=name,
            request_limit=limit,
            threshold=threshold,
            rate_limit_per_minute=rate,
            challenge=options.get("challenge", NO_CHALLENGE),
            challenge_band=options.get("challenge_band", DEFAULT_CHALLENGE_BAND),
        )
        try:
            tenant.full_clean()
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        with transaction.atomic():
            tenant.save()
            issued = HashId.issue(tenant)
            audit.by_command(tenant, "create_tenant", added_message(tenant), added=True)
            audit.by_command(tenant, "create_tenant", f"Issued hash_id {issued.record.prefix}…")
        limit_text = "unlimited" if limit is None else str(limit)
        self.stdout.write(
            f"Created tenant {tenant.name} (limit {limit_text}, "
            f"threshold {tenant.threshold}, challenge {tenant.challenge}). "
            "Its hash_id, shown only now:"
        )
        self.stdout.write(issued.secret)
