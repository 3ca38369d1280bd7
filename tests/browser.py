"""Debian's chromium for the browser tests (admin, capture), driven by Playwright.

Every page a browser of ``chromium()`` opens reports its Content-Security-Policy violations
(a ``securitypolicyviolation`` listener added before any script of the page runs) to
``VIOLATIONS``; tests/system/conftest.py fails a test whose pages met one, so an inline script,
style or handler added to any page fails the browser test that opens it."""

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
# The violations seen since the last ``take_violations()``, one line each: the directive, what
# it refused ("inline", "eval" or a URL), the page, the sample of inline code where any.
VIOLATIONS: list[str] = []
REPORT = "__faciaCspViolation"
# How many of the page's violations have reached ``VIOLATIONS`` (the report is asynchronous: a
# page closed at once after a refused request lost its report in a CI run).
REPORTED = "__faciaCspReported"
LISTENER = f"""
window.{REPORTED} = 0;
document.addEventListener("securitypolicyviolation", (e) => window.{REPORT}(
  `${{e.effectiveDirective}} refused ${{e.blockedURI || "inline"}} on ${{e.documentURI}}` +
  (e.sample ? `: ${{e.sample}}` : "")).then(() => {{ window.{REPORTED} += 1; }}), true);
"""


def take_violations() -> list[str]:
    """The violations seen since the last call (and forgets them)."""
    taken = VIOLATIONS[:]
    VIOLATIONS.clear()
    return taken


def wait_for_reports(page: Any, count: int) -> None:
    """Wait until ``page`` has reported ``count`` violations to ``VIOLATIONS``."""
    page.wait_for_function(f"window.{REPORTED} >= {count}", timeout=60_000)


def _watch(target: Any) -> Any:
    """``target`` (a context or a page) reporting its pages' violations."""
    target.expose_binding(REPORT, lambda _source, line: VIOLATIONS.append(line))
    target.add_init_script(LISTENER)
    return target


class _Watched:
    """The launched browser, whose new contexts and pages report their violations."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def new_context(self, **kwargs: Any) -> Any:
        return _watch(self._browser.new_context(**kwargs))

    def new_page(self, **kwargs: Any) -> Any:
        return _watch(self._browser.new_page(**kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


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
            yield _Watched(launched)
        finally:
            launched.close()
