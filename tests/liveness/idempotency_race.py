"""Two POST /liveness with one Idempotency-Key at once against DATABASE_URL; the outcome as
JSON. Run by tests/liveness/test_idempotency.py in a subprocess, so that the database gets a
fresh Django setup (as tests/accounts/quota_race.py)."""

import json
import os
from typing import Any

WORKERS = 2


def race() -> dict[str, object]:
    from django.db import connections
    from django.test import Client

    from liveness.models import IdempotentAnswer, LivenessCheck
    from tests.races import at_once, checking_tenant

    tenant, body = checking_tenant("race")

    def send() -> Any:
        return Client().post(
            "/liveness", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="race"
        )

    answers, errors = at_once(send, WORKERS)
    tenant.refresh_from_db()
    return {
        "vendor": connections["default"].vendor,
        "statuses": [answer.status_code for answer in answers],
        "bodies": [answer.content.decode() for answer in answers],
        "replayed": sum(answer.get("Idempotent-Replayed") == "true" for answer in answers),
        "requests_used": tenant.requests_used,
        "checks": LivenessCheck.objects.filter(tenant=tenant).count(),
        "answers": IdempotentAnswer.objects.filter(tenant=tenant, status__isnull=False).count(),
        "errors": errors,
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(race()))


if __name__ == "__main__":
    main()
