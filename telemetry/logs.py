"""Log records carrying the request id, as JSON lines or text; nothing from a request body
ever reaches them. ``logging_config`` is the one configuration (Django's settings, and
manage.py when its settings do not load)."""

import contextvars
import logging
import re
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from ml.text import escape_controls

if TYPE_CHECKING:  # Django's settings import this module: django.http not yet
    from django.http import HttpRequest

# The id of the request being served, for every log line: set and cleared by
# telemetry.middleware.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_request_id", default=None
)
# Extra attributes allowed into a line; anything else passed in `extra=` is dropped, so a
# request object (or its body) handed to a logger by a library can never be serialised.
ALLOWED_EXTRAS = frozenset(
    {"method", "path", "status", "duration_ms", "tenant_id", "outcome", "worker_pid"}
)


# A run of the characters a hash_id or a capture token is made of (URL-safe base64: 43 of
# them), long enough to be one; a canonical UUID (a capture session's id, no secret) is kept.
TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{16,}")
UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
LOWER, UPPER, DIGIT = re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]")
# A run this long holding a digit is a hex digest or token even in one case; a host's label
# or a path's word this long holds none in practice.
LONG_RUN = 32


def token_like(run: str) -> bool:
    """Whether ``run`` (from TOKEN_RUN) may be a secret: mixed case, as a hash_id is but for 1
    in 2.7e9 (43 random characters in one case), or long with a digit (of those 1 in 2.7e9,
    all but 1 in 1.3e15 hold one). Of the service's 177 static files, 2 have a name of mixed
    case this long (DateTimeShortcuts.js, RelatedObjectLookups.js); its paths, none."""
    if UUID.fullmatch(run):
        return False
    mixed_case = LOWER.search(run) and UPPER.search(run)
    return bool(mixed_case) or (len(run) >= LONG_RUN and bool(DIGIT.search(run)))


def may_be_key(text: str) -> bool:
    """Whether ``text`` holds a run that may be a hash_id or a capture token (43 characters of
    URL-safe base64, mixed case but for 1 in 2.7e9): ``token_like``'s first rule alone, so a
    single-case hex id (a proxy's or our own uuid4 hex) is not taken for one."""
    return any(
        LOWER.search(run) and UPPER.search(run) and not UUID.fullmatch(run)
        for run in TOKEN_RUN.findall(text)
    )


def redacted(secret: str) -> str:
    """What is written for ``secret``: ``<redacted:N>``, N its length."""
    return f"<redacted:{len(secret)}>"


def holds_token(text: str) -> bool:
    """Whether ``text`` holds a token-like run (what ``redact_tokens`` writes as redacted)."""
    return any(token_like(run) for run in TOKEN_RUN.findall(text))


def redact_tokens(text: str) -> str:
    """``text`` (a path, a Host, a message quoting either) with each token-like run written as
    ``<redacted:N>``, N its length, and so each lower-cased copy of one (Django's refusal of a
    Host quotes it as sent and lower-cased). What a client sends where no secret belongs
    reaches the logs without the secret it may hold, and with the rest of it."""
    copies: set[str] = set()

    def redact(match: re.Match[str]) -> str:
        run = match.group()
        if not token_like(run):
            return run
        copies.add(run.lower())
        return redacted(run)

    text = TOKEN_RUN.sub(redact, text)
    for copy in copies:
        text = text.replace(copy, redacted(copy))
    return text


class RedactTokens(logging.Filter):
    """django.request's line for a 5xx names the path ("Internal Server Error: /x"): written
    through redact_tokens, as the access line's."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_tokens(record.getMessage()), None
        return True


class RequestIdFilter(logging.Filter):
    """Stamp every record with the id of the request being served (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line: time, level, logger, pid, message, request_id, allowed extras."""

    FIELDS = "%(levelname)s %(name)s %(process)d %(message)s %(request_id)s"
    ALWAYS = frozenset({"timestamp", "exc_info", "stack_info"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        super().__init__(self.FIELDS, *args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        keep = self.ALWAYS | ALLOWED_EXTRAS | set(self._required_fields)
        for key in [key for key in log_data if key not in keep]:
            del log_data[key]


class DropClientErrors(logging.Filter):
    """Drops django.request's warning for each 4xx ("Unauthorized: /liveness"): every one is an
    expected answer, already logged once with its status by facia.request."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        return not (isinstance(status, int) and 400 <= status < 500)


# The readiness probe's URL name (liveness.urls): its 503 is an answer, not a failure.
READINESS_URL_NAME = "status_check"


class DropReadinessAnswers(logging.Filter):
    """Drops django.request's ERROR for each 503 of /status_check ("Service Unavailable:
    /status_check"): that 503 is the readiness answer a load balancer polls while the models
    warm up or the database is down (119 ERROR lines a minute at 2 probes/s), already logged
    once with its status by facia.request; the cause is the database probe's own warning.
    Every other 5xx keeps its ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        match = getattr(getattr(record, "request", None), "resolver_match", None)
        readiness = getattr(match, "url_name", None) == READINESS_URL_NAME
        return not (readiness and getattr(record, "status_code", None) == 503)


# A key of the request's WSGI environ (META: one dict under Django's request and DRF's): its
# 503 answers a database outage that liveness.runtime logs once.
OUTAGE_ANSWER = "facia.outage_answer"


def outage_answer(request: "HttpRequest") -> None:
    """Mark ``request`` as answered 503 for a database that does not answer or cannot take
    the write: that is already logged (the worker's one WARNING, or one ERROR of ours), the
    answer is its access line."""
    request.META[OUTAGE_ANSWER] = True


class DropOutageAnswers(logging.Filter):
    """Drops django.request's ERROR for each 503 marked by ``outage_answer``: during an outage
    every request got one ("Service Unavailable: /liveness", 20 for 20 requests), saying no
    more than its access line and the outage's WARNING. Every other 5xx keeps its ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        marked = getattr(getattr(record, "request", None), "META", {}).get(OUTAGE_ANSWER)
        return not (marked and getattr(record, "status_code", None) == 503)


# The most of a django.security record's message kept: Django's own sentences are under 100
# characters, a Host outside ALLOWED_HOSTS is quoted twice in its record (a 5,000-character
# Host made a 10,265-byte line).
SECURITY_MESSAGE_CHARS = 256


class SuspiciousRequest(logging.Filter):
    """Django's record for each request it answers 400 as suspicious (``django.security.*``:
    a Host outside ALLOWED_HOSTS, over 1,000 query or form fields, an admin lookup no URL may
    make) as one short line: its message through redact_tokens (it quotes the Host, or the
    query's key or value) and cut at SECURITY_MESSAGE_CHARS, its traceback dropped
    (Django's own validation, the same every time: 4,250 bytes for 1,200 query fields). A
    WARNING, as the client's request is at fault, except DisallowedHost, which stays an ERROR:
    a stale ALLOWED_HOSTS refuses every real client too, and must show as one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact_tokens(record.getMessage())
        if len(message) > SECURITY_MESSAGE_CHARS:
            message = f"{message[:SECURITY_MESSAGE_CHARS]}... ({len(message)} characters)"
        record.msg, record.args = message, None
        record.exc_info = record.exc_text = record.stack_info = None
        if record.name != "django.security.DisallowedHost":
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s [%(request_id)s] %(message)s"
# Before each line of a record after its first (a traceback's, a stack's): a record's own line
# starts with its date, so no line of a traceback can pass for one.
CONTINUATION = "  "


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT with the message's control characters escaped: a client's text in it (the
    path of the access line: %0a decodes to a newline, %1b to ESC) can neither forge a line nor
    drive the operator's terminal. A traceback or stack appended after the message keeps its
    lines, each indented and escaped: an exception's text can hold a client's (a header, a
    file name), and its newline only starts another indented line of the traceback."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  # logging's name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        # The whole text, not formatException's: another handler's formatter may have cached
        # the record's exc_text raw before this one runs.
        first, *rest = super().format(record).split("\n")
        lines = [escape_controls(first), *(CONTINUATION + escape_controls(line) for line in rest)]
        return "\n".join(lines)


def logging_config(log_format: str, level: str, stream: str = "stdout") -> dict[str, Any]:
    """Every record on ``stream`` ("stdout", or "stderr" for a manage.py command, whose stdout
    is its output) as ``log_format`` ("json" or "text"), its traceback inside it."""
    handler = {"handlers": ["stdout"], "level": level, "propagate": False}
    # Never DEBUG: django.template logs each variable a template lacks at DEBUG, with an
    # exception holding the whole context: the new hash_id on the page that shows it once,
    # the CSRF token.
    templates = max(logging.getLevelNamesMapping()[level], logging.INFO)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "telemetry.logs.RequestIdFilter"},
            "client_errors": {"()": "telemetry.logs.DropClientErrors"},
            "readiness_answers": {"()": "telemetry.logs.DropReadinessAnswers"},
            "outage_answers": {"()": "telemetry.logs.DropOutageAnswers"},
            "suspicious": {"()": "telemetry.logs.SuspiciousRequest"},
            "redact_tokens": {"()": "telemetry.logs.RedactTokens"},
        },
        "formatters": {
            "text": {"()": "telemetry.logs.TextFormatter", "fmt": TEXT_FORMAT},
            "json": {"()": "telemetry.logs.JsonFormatter"},
        },
        # "stdout": the name the loggers and gunicorn's configuration give the log stream.
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": f"ext://sys.{stream}",
                "formatter": log_format,
                "filters": ["request_id"],
            },
            # A handler of its own: a logger's filter sees only the records of that logger,
            # and Django logs each kind as django.security.<its class>.
            "security": {
                "class": "logging.StreamHandler",
                "stream": f"ext://sys.{stream}",
                "formatter": log_format,
                "filters": ["request_id", "suspicious"],
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "django": handler,
            "django.request": {
                **handler,
                "filters": [
                    "client_errors",
                    "readiness_answers",
                    "outage_answers",
                    "redact_tokens",
                ],
            },
            "django.security": {**handler, "handlers": ["security"]},
            "django.template": {**handler, "level": templates},
        },
    }


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def database_target() -> str:
    """The default database as a URL without its password, for the message."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host, port = (db.get(key) or "" for key in ("USER", "HOST", "PORT"))
    return f"postgresql://{user}@{host}:{port}/{db['NAME']}"


# A connection string's password: a URL's "user:secret@" and a "password=secret" pair.
URL_PASSWORD = re.compile(r"(\w+://[^\s:/@]*):[^\s@]*@")
PAIR_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def database_error(exc: BaseException) -> str:
    """``exc`` on one line without the database's password: psycopg quotes a connection
    string it cannot parse, password included ('... in URI: "postgres://u:secret@[h/db"')."""
    from django.conf import settings

    text = str(exc)
    password = settings.DATABASES["default"].get("PASSWORD")
    if password:
        text = text.replace(password, "***")
    text = PAIR_PASSWORD.sub(r"\1***", URL_PASSWORD.sub(r"\1:***@", text))
    return " ".join(text.split()) or type(exc).__name__
