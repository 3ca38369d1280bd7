"""Debian's chromium for the browser tests (admin, capture), driven by Playwright."""

import os

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
