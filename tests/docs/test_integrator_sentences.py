"""The answers docs/integrator/ prints are the service's own: every `{"error": ...}` and
`{"message": ...}` sentence on those pages is one the service sends (from ``liveness.answers``,
the quality gates, or gunicorn's worker), and every sentence it sends is on a page (or, for a
refusal that carries a `code`, its code is). A sentence changed on one side only fails here."""

import json
import re
import string

import pytest

from facia_site import worker
from liveness import runtime
from liveness.answers import ANSWERS
from ml.quality import REFUSALS
from tests.conftest import REPO

PAGES = [REPO / "docs" / "integrator" / name for name in ("api.md", "sessions.md", "client.md")]
# A JSON object in backticks holding an error or message sentence (it may span lines).
SNIPPET = re.compile(r'`(\{"(?:error|message)": "(?:[^"\\]|\\.)*"[^`]*\})`')
# Where a page writes a placeholder instead of a value.
PLACEHOLDER = re.compile(r"<\w+>")
# gunicorn's answers to the PROXY protocol and to TLS: both are off (gunicorn.conf.py sets no
# proxy_protocol and no certfile), so a PROXY line is a malformed request line.
UNREACHABLE = {
    "Invalid PROXY protocol line.",
    "Proxy request not allowed.",
    "TLS handshake failed.",
}
# The worker's fallbacks by status (an error gunicorn answers that no kind above names).
FALLBACKS = set(worker.BY_STATUS.values())


def text() -> str:
    """The pages, each run of whitespace one space (a sentence may wrap in a table cell)."""
    return re.sub(r"\s+", " ", " ".join(page.read_text(encoding="utf-8") for page in PAGES))


def pattern(template: str) -> str:
    """A regex for a str.format template: each field any text (the docs write N, GET...)."""
    parts = string.Formatter().parse(template)
    return "".join(
        re.escape(literal) + (".+" if field is not None else "") for literal, field, *_ in parts
    )


def service_sentences() -> dict[str, str]:
    """Every sentence the service answers, as a regex, by a name for the failure message."""
    sentences = {code: pattern(answer.text) for code, answer in ANSWERS.items()}
    sentences |= {code: re.escape(sentence) for code, sentence in REFUSALS.items()}
    parse_errors = {sentence for _, _, sentence in worker.PARSE_ERRORS}
    worker_sentences = parse_errors | set(worker.FRAMING_ERRORS.values()) | FALLBACKS
    worker_sentences |= {worker.OVER_CLIENT_CAP.error, worker.BUSY.error}
    sentences |= {sentence: re.escape(sentence) for sentence in worker_sentences}
    return sentences


def documented_sentences() -> list[str]:
    found = []
    for snippet in SNIPPET.findall(text()):
        body = json.loads(snippet)
        sentence = body.get("error", body.get("message"))
        if not PLACEHOLDER.search(sentence):
            found.append(sentence)
    return found


def test_the_pages_print_answers() -> None:
    assert len(documented_sentences()) >= 30


@pytest.mark.parametrize("sentence", documented_sentences())
def test_each_documented_sentence_is_sent(sentence: str) -> None:
    patterns = service_sentences().values()
    assert any(re.fullmatch(regex, sentence) for regex in patterns), sentence


def test_each_sentence_sent_is_documented() -> None:
    pages = text().replace('\\"', '"')
    missing = []
    for code, answer in ANSWERS.items():
        if answer.with_code:
            present = f"`{code}`" in pages or f'"code": "{code}"' in pages
        else:
            present = re.search(pattern(answer.text), pages) is not None
        if not present:
            missing.append(code)
    for _, _, sentence in worker.PARSE_ERRORS:
        if sentence not in pages and sentence not in UNREACHABLE:
            missing.append(sentence)
    missing += [s for s in worker.FRAMING_ERRORS.values() if s not in pages]
    assert missing == []


def test_each_status_check_reason_is_documented() -> None:
    """/status_check's text/plain answers, as api.md quotes them."""
    pages = text()
    reasons = (runtime.STARTING, runtime.DB_DOWN, runtime.DB_FULL, runtime.DB_BUSY)
    for reason in ("Service is live", runtime.NOT_MIGRATED.format("N"), *reasons):
        assert f"`{reason}`" in pages or f"`200 {reason}`" in pages, reason
