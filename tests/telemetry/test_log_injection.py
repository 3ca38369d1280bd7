"""Log injection: what a client sends (a path with an encoded newline or terminal escape)
reaches the access line of every request; in either LOG_FORMAT it stays one line and writes
no control character (Django's test client, the service's own logging configuration)."""

import json
import logging.config
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.test import Client

from telemetry.logs import logging_config

# An encoded newline forging a second record, and ESC[2J (clears an operator's terminal).
FORGED = "2026-12-03 09:00:00,000 ERROR 1 facia.request [x] forged"
PATH = f"/liveness%0a{FORGED.replace(' ', '%20')}%1b[2J%0d"


@pytest.fixture
def log_as(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[str], None]]:
    """Configure the service's logging in a format, its stdout captured; restored after."""

    def configure(log_format: str) -> None:
        logging.config.dictConfig(logging_config(log_format, "INFO"))

    yield configure
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_path_cannot_forge_a_log_line(
    log_as: Callable[[str], None], capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    log_as(log_format)
    capsys.readouterr()
    assert Client().get(PATH).status_code == 404
    out = capsys.readouterr().out
    access = [line for line in out.splitlines() if "liveness" in line]
    assert len(access) == 1, out  # one record, one line: nothing forged
    assert not any(line.startswith(FORGED) for line in out.splitlines()), out
    assert "\x1b" not in out and "\r" not in out
    if log_format == "json":
        assert json.loads(access[0])["path"].startswith("/liveness\n2026")  # JSON escapes it
    else:
        assert "/liveness\\n2026" in access[0] and "\\x1b[2J\\r" in access[0]
