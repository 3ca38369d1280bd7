"""docs/evaluator/accuracy.md quotes the score maps' leave-one-source-out figures as a table;
every row is the one ``ml/score_maps.json``'s provenance gives (tests/ml/test_score_maps.py
recomputes those from the images), so refitting the maps cannot leave the page behind."""

from __future__ import annotations

from ml import profiles
from tests.conftest import REPO

PAGE = REPO / "docs" / "evaluator" / "accuracy.md"
METRICS = ("AUC", "APCER", "BPCER", "ACER", "balanced_log_loss")


def row(profile: str, group: str, figures: dict[str, dict[str, float]]) -> str:
    before, after = figures["before"], figures["after"]
    counts = f"{after['bona_fide']} / {after['attacks']} ({after['sources']})"
    cells = [f"{before[m]:.3f} → {after[m]:.3f}" for m in METRICS]
    return "| " + " | ".join([f"`{profile}`", group, counts, *cells]) + " |"


def test_the_leave_one_source_out_table_is_the_shipped_provenance() -> None:
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    figures = profiles.score_maps()["provenance"]["leave_one_source_out"]
    expected = [
        row(profile, group, when)
        for profile, groups in figures.items()
        for group, when in groups.items()
    ]
    assert len(expected) == 8  # two profiles by all, frame, crop and app-cut crop
    assert [line for line in expected if line not in lines] == []
