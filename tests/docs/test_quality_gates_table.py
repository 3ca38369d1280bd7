"""docs/integrator/api.md's quality gates table gives each gate's default where it refuses:
each `LIVENESS_QUALITY` key the table names is a threshold of ``ml.quality``, every threshold
is named, and the number its row quotes is the threshold's default."""

from __future__ import annotations

import re
from dataclasses import fields

from ml.quality import REFUSALS, QualityThresholds
from tests.conftest import REPO

PAGE = REPO / "docs" / "integrator" / "api.md"
ROW = re.compile(r"^\| `(\w+)` \| [^|]* \| ([^|]*) \|$", re.M)


def gate_rows() -> dict[str, str]:
    section = PAGE.read_text(encoding="utf-8").split("## Quality gates (422)", 1)[1]
    rows = dict(ROW.findall(section.split("\n## ", 1)[0]))
    rows.pop("code")  # the header
    return rows


def keyed_rows() -> dict[str, str]:
    """Each threshold key the table names (in backticks, first in its parentheses) and the
    text of the row that names it."""
    found = {}
    for cell in gate_rows().values():
        for key in re.findall(r"\(`(\w+)`", cell):
            found[key] = cell
    return found


def test_every_gate_has_its_row() -> None:
    assert sorted(gate_rows()) == sorted(REFUSALS)


def test_every_threshold_is_named_with_its_default() -> None:
    defaults = {f.name: f.default for f in fields(QualityThresholds)}
    rows = keyed_rows()
    assert sorted(rows) == sorted(defaults)
    wrong = {}
    for key, cell in rows.items():
        numbers = {float(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", cell)}
        if defaults[key] not in numbers:
            wrong[key] = (defaults[key], cell)
    assert wrong == {}
