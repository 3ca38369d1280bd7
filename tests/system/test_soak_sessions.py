"""``python -m bench.soak --mode sessions`` for a few seconds against its own gunicorn: every
walk of the rotation gets the outcome it expects and the report has its parts; a tenant rate
limit the walks exceed (the server's real 429) makes it exit non-zero."""

import os
import subprocess
import sys

import pytest

from bench.gunicorn import free_port
from tests.conftest import REPO

pytestmark = [pytest.mark.system, pytest.mark.slow]


def soak(*extra: str) -> subprocess.CompletedProcess[str]:
    port = str(int(os.environ.get("FACIA_TEST_PORT") or 0) or free_port())
    command = [sys.executable, "-m", "bench.soak", "--mode", "sessions", "--port", port]
    command += ["--warmup", "1", "--sample-s", "1", *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_sessions_mode_walks_every_outcome_and_reports() -> None:
    # A few seconds of RSS give no meaningful slope (the first runs went to 4 MB/min, noise):
    # the limit is lifted, the slope still printed.
    done = soak("--duration", "8", "--prune-every", "4", "--max-slope", "1000")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for line in (
        "statuses per call:",
        "  open 201: ",
        "  selfie 202: ",
        "  selfie 422: ",
        "  selfie 409: ",
        "  quality (garbage token) 401: ",
        "  quality (unknown session) 404: ",
        "  passive: done is_live=1: ",
        "  no_face: open, refused no_face: ",
        "  head_turn: challenge failed multiple_faces: ",
        "  flood: challenge running: ",
        "rows over time (s: sessions / check records / throttle counters):",
        "prune at ",
        "RSS slope per worker after 1 s warm-up",
        "server alive at the end: yes",
    ):
        assert line in out, line
    assert "UNEXPECTED" not in out


def test_an_unexpected_status_fails_the_run() -> None:
    # 5 backend calls a minute per tenant (a walk's session opened and read): a later walk's
    # POST /sessions or GET /sessions/{id} is refused with the tenant's 429.
    done = soak("--duration", "4", "--tenant-rate-limit", "5")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "UNEXPECTED" in done.stdout
    assert " 429: " in done.stdout
