"""Two capture sessions' rate windows over a made-up clock against DATABASE_URL; the throttle
rows left after each step as JSON. Run by tests/capture/test_prune_sessions.py in a
subprocess, so that each database gets a fresh Django setup (as tests/accounts/quota_race.py).
"""

import json
import os
import uuid
from types import SimpleNamespace

# A minute's start: the selfie rate's windows are minutes, the quality rate's seconds.
BASE = 1_800_000_000 - 1_800_000_000 % 60


def walk() -> dict[str, object]:
    from django.core.management import call_command
    from django.db import connections

    from accounts.models import HashId, Tenant
    from capture import service
    from guard import throttle
    from guard.models import Counter

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name=f"windows-{uuid.uuid4().hex}")
    HashId.issue(tenant)
    credential = HashId.objects.get(tenant=tenant)
    sessions = {name: service.open_session(tenant, credential).session for name in "AB"}
    names = {str(session.pk): name for name, session in sessions.items()}
    clock = SimpleNamespace(now=0.0)
    vars(throttle)["time"] = SimpleNamespace(time=lambda: clock.now)  # the module's clock, faked

    def at(offset_s: float, *calls: tuple[str, str]) -> list[list[object]]:
        """The ``calls`` (rate, session) at BASE + ``offset_s``; then every window's row."""
        clock.now = BASE + offset_s
        for rate, name in calls:
            getattr(service, f"within_{rate}_rate")(sessions[name])
        rows = Counter.objects.all()
        return sorted([c.scope, names[c.subject], c.bucket - BASE, c.hits] for c in rows)

    steps = [
        at(0.1, ("quality", "A"), ("quality", "A"), ("selfie", "A")),
        at(1.1, ("quality", "B")),
        at(2.1, ("quality", "B")),
        at(120.1, ("quality", "B"), ("selfie", "B")),
    ]
    return {"vendor": connections["default"].vendor, "steps": steps}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(walk()))


if __name__ == "__main__":
    main()
