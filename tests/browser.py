"""Debian's chromium for the browser tests (admin, capture), driven by Playwright."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import skip_or_fail

CHROMIUM = os.environ.get("FACIA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The operator's password in a browser test's admin login.
PASSWORD = "browser-test-Passw0rd!"


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's chromium under Playwright, closed afterwards; skipped (failed under CI) where it
    is missing."""
    if not Path(CHROMIUM).is_file():
        skip_or_fail(
            f"no chromium at {CHROMIUM}: `make test` installs Debian's chromium when it can "
            "(apt-get install chromium); set FACIA_CHROMIUM to another binary"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield launched
        finally:
            launched.close()
