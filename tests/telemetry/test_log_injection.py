"""Log injection: what a client sends (a path with an encoded newline or terminal escape)
reaches the access line of every request; in either LOG_FORMAT it stays one line and writes
no control character (Django's test client, the service's own logging configuration)."""

import json
import logging.config
import re
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from telemetry.logs import logging_config

# An encoded newline forging a second record, and ESC[2J (clears an operator's terminal).
FORGED = "2026-12-03 09:00:00,000 ERROR 1 facia.request [x] forged"
PATH = f"/liveness%0a{FORGED.replace(' ', '%20')}%1b[2J%0d"
TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


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


# --- an exception's text in a traceback --------------------------------------------------------

# An exception text as a client can choose it: a forged record on a line of its own, ESC[2J,
# a carriage return, a C1 CSI and a Unicode line separator.
HOSTILE_TEXT = f"x\n{FORGED}\x1b[2J\r\x9b2J\u2028{FORGED}"
RAW_CONTROLS = ("\x1b", "\r", "\x9b", "\u2028")


def hostile_records(logger: logging.Logger) -> None:
    """An exception with HOSTILE_TEXT logged with its traceback, then a stack."""
    try:
        raise ValueError(HOSTILE_TEXT)
    except ValueError:
        logger.exception("failed")
    logger.warning("where", stack_info=True, extra={"path": HOSTILE_TEXT})


def test_a_traceback_cannot_forge_a_text_line(
    log_as: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    log_as("text")
    capsys.readouterr()
    hostile_records(logging.getLogger("facia.test"))
    lines = capsys.readouterr().out.splitlines()
    records = [line for line in lines if TEXT_RECORD.match(line)]
    assert len(records) == 2, lines  # "failed" and "where": nothing forged
    assert not any(line.lstrip().startswith(FORGED) for line in records), lines
    assert not any(c in line for line in lines for c in RAW_CONTROLS), lines
    traceback = lines[lines.index(records[0]) + 1 : lines.index(records[1])]
    assert traceback[0] == "  Traceback (most recent call last):"
    assert all(line.startswith("  ") for line in traceback), traceback
    assert "  ValueError: x" in traceback  # its own line breaks kept, each line indented
    assert f"  {FORGED}\\x1b[2J\\r\\x9b2J\\u2028{FORGED}" in traceback


def test_a_traceback_stays_inside_its_json_line(
    log_as: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    log_as("json")
    capsys.readouterr()
    hostile_records(logging.getLogger("facia.test"))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 2, lines  # one JSON object per record
    assert out.isascii() and not any(c in out for c in RAW_CONTROLS)
    first = json.loads(lines[0])
    assert first["exc_info"].endswith(f"ValueError: {HOSTILE_TEXT}")  # whole, escaped by JSON
    assert "stack_info" in json.loads(lines[1])


@pytest.mark.django_db
def test_a_link_to_the_admin_cannot_forge_a_line(
    log_as: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """A filter the admin does not allow (a relation's field) is refused with 400, and Django
    logs it (one line, telemetry.logs.SuspiciousRequest): its text is the query's key, chosen
    by whoever wrote the link an operator followed."""
    admin = User.objects.create_superuser("root", password="x")
    client = Client()
    client.force_login(admin)
    log_as("text")
    capsys.readouterr()
    key = f"hash_ids__tenant__x%0a{FORGED.replace(' ', '%20')}%1b[2J"
    assert client.get(f"/admin/accounts/tenant/?{key}=1").status_code == 400
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith(FORGED) for line in lines), lines
    assert not any(c in line for line in lines for c in RAW_CONTROLS), lines
    (record,) = [line for line in lines if "DisallowedModelAdminLookup" in line]
    assert f"Filtering by hash_ids__tenant__x\\n{FORGED}\\x1b[2J" in record, lines
    assert len(lines) == 2, lines  # that record and the access line: no traceback
