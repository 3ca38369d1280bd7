"""Check records deleted with their copies, and expired challenges stripped of the face, against
DATABASE_URL; what is left after each step as JSON. Run by tests/liveness/test_erasure.py in a
subprocess, so that each database gets a fresh Django setup (as tests/accounts/quota_race.py)."""

import json
import os
from datetime import timedelta
from io import StringIO
from typing import Any


def walk() -> dict[str, object]:
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from accounts.models import Tenant
    from capture.models import CaptureSession
    from liveness.models import IdempotentAnswer, LivenessCheck
    from ml import headturn

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name="walk")
    now = timezone.now()

    def session(name: str, check: int | None, expires_s: float, judge: Any = None) -> None:
        CaptureSession.objects.create(
            tenant=tenant,
            token_digest="0" * 64,
            expires_at=now + timedelta(seconds=expires_s),
            selfie_check_id=check,
            selfie_request_id=name,
            score=0.9 if check else None,
            challenge_judge=judge and {"judge": judge, "progress": {"state": "running"}},
        )

    def copied(name: str, age_days: int = 0) -> list[int]:
        """A check record with a session and another with an answer, both named ``name``."""
        checks = [
            LivenessCheck.insert(tenant=tenant, request_id=name, latency_ms=1.0, score=0.9)
            for _ in range(2)
        ]
        LivenessCheck.objects.filter(pk__in=checks).update(
            created_at=now - timedelta(days=age_days)
        )
        session(name, checks[0], 300)
        IdempotentAnswer.objects.create(
            tenant=tenant,
            key_digest=name,
            body_digest="b",
            claim="c",
            status=201,
            answer='{"score": 0.9}',
            created_at=now,
            liveness_check_id=checks[1],
        )
        return checks

    erased = copied("erased")
    copied("kept")
    copied("old", age_days=40)
    one = copied("one")
    face = headturn.HeadTurnJudge(("turn_left", "turn_right", "look_up")).to_state()
    session("running", None, 300, face)
    session("expired", None, -1, face)

    def left() -> list[str]:
        answers = set(IdempotentAnswer.objects.values_list("key_digest", flat=True))
        checks = set(LivenessCheck.objects.values_list("request_id", flat=True))
        named = CaptureSession.objects.filter(selfie_check__isnull=False)
        sessions = set(named.values_list("selfie_request_id", flat=True))
        assert answers == checks == sessions, (answers, checks, sessions)
        return sorted(checks)

    # As Django's delete() on either database: select_for_update dropped (no transaction
    # needed), an unsaved record refused.
    _, orm = LivenessCheck.objects.select_for_update().filter(pk__in=erased).delete()
    try:
        LivenessCheck(tenant=tenant).delete()
        unsaved = "deleted"
    except ValueError as refused:
        unsaved = str(refused)
    page = [LivenessCheck.objects.get(pk=pk).delete()[1] for pk in one]  # the delete page's
    after_orm = left()
    call_command("prune_checks", "--days", "30", stdout=StringIO())
    after_prune = left()
    out = StringIO()
    call_command("prune_sessions", stdout=out)
    stripped = int(out.getvalue().split("; ")[1].split()[0])
    stored = CaptureSession.objects.filter(challenge_judge__isnull=False)
    judges = {
        name: judge["judge"]
        for name, judge in stored.values_list("selfie_request_id", "challenge_judge")
        if isinstance(judge, dict)
    }
    return {
        "vendor": connections["default"].vendor,
        "orm": orm,
        "one by one": page,
        "left after the ORM": after_orm,
        "left after prune_checks": after_prune,
        "sessions left": sorted(CaptureSession.objects.values_list("selfie_request_id", flat=True)),
        "judge keys": {
            name: "all" if judge == face else sorted(judge) for name, judge in judges.items()
        },
        "stripped": stripped,
        "unsaved": unsaved,
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(walk()))


if __name__ == "__main__":
    main()
