"""A challenge retry (POST /sessions/{id}/challenge) and the backend's read (GET
/sessions/{id}) of one session at once, on PostgreSQL (DATABASE_URL); what each answered and
the session after, as JSON. Run by tests/capture/test_challenge_race.py in a subprocess, so
that the database gets a fresh Django setup (as tests/calibration/switch_race.py).

The session is a when_unsure session whose held selfie's challenge failed (its state set as
the real calls leave it). The call named ``first`` is held just before it writes the session
(``execute_wrapper``) until the other call has answered or waits on a lock: the window in
which both read the session as it was."""

import json
import os
import sys
import threading
import uuid
from typing import Any

WAIT_S = 60
SESSION_WRITE = 'UPDATE "capture_capturesession"'


def race(first: str, tries: int, limit: int) -> dict[str, object]:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    from accounts.models import WHEN_UNSURE, HashId, Tenant
    from capture import service
    from capture.models import FAILED, CaptureSession
    from tests.races import waits_on_a_lock

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's
    call_command("migrate", verbosity=0)
    settings.CAPTURE_CHALLENGE_TRIES = limit
    tenant = Tenant.objects.create(name=f"retry-{uuid.uuid4().hex}", challenge=WHEN_UNSURE)
    secret = HashId.issue(tenant).secret
    opened = service.open_session(tenant, HashId.objects.get(tenant=tenant))
    session_id, token = opened.session.pk, opened.token
    CaptureSession.objects.filter(pk=session_id).update(
        score=0.5,  # held: its selfie judged, the challenge deciding
        capture="frame",
        frames=1,
        challenge=FAILED,
        challenge_code="step_timeout",
        challenge_tries=tries,
        challenge_judge={"progress": {"state": FAILED, "code": "step_timeout"}},
    )
    arrived, done = threading.Event(), {"retry": threading.Event(), "read": threading.Event()}
    answers: dict[str, Any] = {}

    def before_writing(execute: Any, sql: str, params: Any, many: bool, ctx: Any) -> Any:
        if sql.startswith(SESSION_WRITE) and not arrived.is_set():
            arrived.set()
            other = "read" if first == "retry" else "retry"
            while not done[other].wait(0.01):
                if waits_on_a_lock():
                    break
        return execute(sql, params, many, ctx)

    def retry() -> Any:
        url = f"/sessions/{session_id}/challenge"
        auth = f"Bearer {token}"
        return Client().post(url, "{}", content_type="application/json", HTTP_AUTHORIZATION=auth)

    def read() -> Any:
        return Client().get(f"/sessions/{session_id}", HTTP_X_HASH_ID=secret)

    def call(name: str) -> None:
        try:
            with connection.execute_wrapper(before_writing if name == first else _through):
                response = (retry if name == "retry" else read)()
            answers[name] = {"status": response.status_code, **response.json()}
        finally:
            done[name].set()
            connections.close_all()

    held = threading.Thread(target=call, args=(first,))
    held.start()
    while not (arrived.wait(0.01) or done[first].is_set()):
        pass  # until the first call is about to write the session, or has answered without
    other = threading.Thread(target=call, args=("read" if first == "retry" else "retry",))
    other.start()
    other.join(WAIT_S)
    held.join(WAIT_S)
    after = CaptureSession.objects.get(pk=session_id)
    return {
        "vendor": connections["default"].vendor,
        "held_until_the_other": arrived.is_set(),
        "answers": answers,
        "session": {
            "state": after.state,
            "is_live": after.is_live,
            "challenge": after.challenge,
            "tries": after.challenge_tries,
        },
    }


def _through(execute: Any, sql: str, params: Any, many: bool, ctx: Any) -> Any:
    return execute(sql, params, many, ctx)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    first, tries, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(race(first, tries, limit)))


if __name__ == "__main__":
    main()
