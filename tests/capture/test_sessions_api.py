"""No tests: the session API's tests are tests/capture/test_session_*.py, one module per
endpoint. This name stays importable for tests/capture/test_challenge_when_unsure.py, which
imports ``post`` and ``verdict`` from it; they live in tests/capture/sessions.py."""

from tests.capture.sessions import post, verdict

__all__ = ["post", "verdict"]
