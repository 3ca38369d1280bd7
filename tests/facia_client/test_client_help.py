"""facia-client --help shows each command form on a line of its own."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

FORMS = (
    "facia-client SELFIE [--url URL] [--hash-id HASH_ID] [--timeout S] [--idempotency-key KEY]",
    "facia-client session open [--url URL] [--hash-id HASH_ID]",
    "facia-client session get SESSION_ID [--url URL] [--hash-id HASH_ID]",
)


@pytest.mark.parametrize("args", [["--help"], ["session", "--help"]])
def test_help_lists_the_command_forms_one_per_line(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "facia_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    for form in FORMS:
        assert form in lines, done.stdout
