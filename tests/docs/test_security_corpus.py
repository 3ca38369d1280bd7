"""docs/operator/security.md counts the hostile requests of bench/corpus.py; the count is the
rows of tests/corpus/expected.csv (tests/liveness/test_corpus.py: one per generated case)."""

import csv
import re

from tests.conftest import REPO


def test_the_corpus_size_quoted_is_the_corpus() -> None:
    page = (REPO / "docs" / "operator" / "security.md").read_text(encoding="utf-8")
    quoted = re.search(r"`bench/corpus.py` generates (\d+) hostile requests", page)
    assert quoted is not None
    with (REPO / "tests" / "corpus" / "expected.csv").open(newline="") as table:
        assert int(quoted[1]) == len(list(csv.DictReader(table)))
