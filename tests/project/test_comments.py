"""Comments and docstrings of the app code give the reason, not the history: what the code
did before belongs in the commit message. A few phrasings can only narrate a past behaviour
("was a 500", "was answered 503", "now gets 401", "it logged ...", "29.6 ms, now 0.8 ms");
none may appear in a comment or a docstring of an app package (tests and migrations aside).
Comment lines in a row are read as one text, so a phrase broken over two lines is found."""

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

from tests.project.test_layering import INDEPENDENT, LAYERS, ROOT

PACKAGES = (*LAYERS, *INDEPENDENT, "bench")
HISTORY = re.compile(
    r"\bwas an? (?:\d{3}|traceback|\w+Error)\b"  # "was a 500", "was an OverflowError"
    r"|\b(?:was|were) answered (?:\d{3}|with\b)"  # "was answered 503", "... with the sentences"
    r"|\bnow gets?\b"  # "its hash_id now gets 401"
    r"|\bit (?:said|logged)\b"  # "it logged a WARNING per probe"
    r"|\bnow (?:\d|nothing\b)"  # "29.6 ms of CPU per request, now 0.8 ms"
)


def texts(path: Path) -> Iterator[tuple[int, str]]:
    """Each docstring, and each run of comment lines joined, with its first line."""
    source = path.read_text(encoding="utf-8")
    run: list[str] = []
    start = last = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        if run and line != last + 1:
            yield start, " ".join(run)
            run = []
        if not run:
            start = line
        run.append(token.string.lstrip("#").strip())
        last = line
    if run:
        yield start, " ".join(run)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring and node.body:
                yield node.body[0].lineno, " ".join(docstring.split())


def app_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                yield path


def test_app_comments_give_the_reason_not_the_history() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}"
        for path in app_files()
        for line, text in texts(path)
        if (match := HISTORY.search(text))
    ]
    assert not found, "\n".join(found)


def test_the_patterns_find_history() -> None:
    """Each pattern finds the phrasing it is there for, and not its present-tense reason."""
    history = (
        "a tenant id past 64 bits was an OverflowError on SQLite, a 500",
        'which was answered 503 "database unavailable" with an ERROR line',
        "where its hash_id now gets 401",
        "it logged a WARNING per probe",
        "29.6 ms of CPU per request, now 0.8 ms",
    )
    reasons = (
        "a tenant id past 64 bits raises OverflowError on SQLite, a 500",
        "a body it was answered without: as evictable as an idle one",
        "a WARNING per probe would be about one a second per worker",
        "29.6 ms of CPU per request against 0.8 ms kept rendered",
    )
    assert all(HISTORY.search(text) for text in history)
    assert not any(HISTORY.search(text) for text in reasons)
