"""A challenge retry racing the backend's read of the same session, on PostgreSQL (real
threads, Django's test client, tests/capture/retry_race.py): the read never takes a try, a
retry with a try left starts a new challenge, and one with none loses cleanly to the verdict
the read gave (SQLite serialises writers: the two cannot interleave there)."""

from typing import Any

from tests.conftest import run_on_database, scratch_database


def raced(first: str, tries: int, limit: int) -> dict[str, Any]:
    with scratch_database("facia_retry") as url:
        outcome = run_on_database("tests.capture.retry_race", url, first, str(tries), str(limit))
    assert outcome["vendor"] == "postgresql"
    return outcome


def test_a_retry_with_a_try_left_wins_over_the_read() -> None:
    outcome = raced("retry", tries=1, limit=3)
    assert outcome["held_until_the_other"]
    retry, read = outcome["answers"]["retry"], outcome["answers"]["read"]
    assert retry["status"] == 200 and retry["challenge"]["state"] == "running"
    assert retry["challenge"]["tries_left"] == 1
    assert read["status"] == 200 and read["state"] == "open" and read["challenge"] == "failed"
    assert outcome["session"] == {
        "state": "open",
        "is_live": None,
        "challenge": "running",
        "tries": 2,  # the retry's: the read took none
    }


def test_a_retry_with_no_try_left_loses_to_the_reads_verdict() -> None:
    """The read decides the held selfie (its challenge failed, no try left under a lowered
    CAPTURE_CHALLENGE_TRIES) while the retry is about to: the retry answered
    challenge_tries_exhausted, as if the session could still be decided; now 409
    session_done, as when the read came first."""
    outcome = raced("retry", tries=1, limit=1)
    assert outcome["held_until_the_other"]
    retry, read = outcome["answers"]["retry"], outcome["answers"]["read"]
    assert read["status"] == 200 and read["state"] == "done"
    assert read["liveness_result"]["is_live"] == 0
    assert retry == {
        "status": 409,
        "error": "This session already has its verdict; start a new session.",
        "state": "done",
    }
    assert outcome["session"]["state"] == "done" and outcome["session"]["is_live"] is False


def test_a_read_that_lost_the_decision_to_the_retry_answers_the_verdict() -> None:
    """The retry decides the held selfie while the read is about to: the read answered the
    session as it had read it (open, no verdict) after its own write found it done."""
    outcome = raced("read", tries=1, limit=1)
    assert outcome["held_until_the_other"]
    retry, read = outcome["answers"]["retry"], outcome["answers"]["read"]
    assert retry["status"] == 409 and retry["state"] == "done"
    assert read["status"] == 200 and read["state"] == "done"
    assert read["liveness_result"]["is_live"] == 0 and read["challenge"] == "failed"
    assert outcome["session"]["state"] == "done" and outcome["session"]["tries"] == 1
