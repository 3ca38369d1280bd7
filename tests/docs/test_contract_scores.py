"""docs/integrator/api.md says how the scores the contract's guide prints (its bona fide
example 0.9862353, its spoof example 0.16925619588358065) and the engine's clip at 0.999 go out
on the wire; what it says is the body ``liveness.answers`` sends for each. Naming the bona
fide example alone ("as in the contract's example") would read as if the guide's scores were
all 7 places: its spoof example is a full double, which this service rounds."""

import re

import pytest

from liveness.answers import Judged, respond
from tests.conftest import REPO

API_MD = REPO / "docs" / "integrator" / "api.md"
BONA_FIDE, SPOOF = "0.9862353", "0.16925619588358065"  # the guide's two example scores
CLIP = "0.9989999999999999"  # the engine's clip at 0.999, as the score map's arithmetic leaves it


def paragraph() -> str:
    """api.md's item on the score, one space per run of whitespace."""
    text = re.sub(r"\s+", " ", API_MD.read_text(encoding="utf-8"))
    return text.split("`liveness_score` is the probability", 1)[1].split("- The 413", 1)[0]


def wire(score: str) -> str:
    """The score as the service's 201 writes it."""
    body = respond(Judged(False, float(score), "fast", "frame")).content.decode()
    found = re.search(r'"liveness_score": ([^}]+)\}', body)
    assert found, body
    return found[1]


def stated(score: str) -> str:
    """What the page says ``score`` is answered as ("answers that score `Y`" after it, or
    "answered `Y`, not `score`")."""
    text = paragraph()
    after = re.search(re.escape(score) + r"`[^`]*? answers that score `([0-9.]+)`", text)
    before = re.search(r"answered `([0-9.]+)`, not `" + re.escape(score) + "`", text)
    found = after or before
    assert found, f"api.md does not say how {score} is answered"
    return found[1]


@pytest.mark.parametrize("score", [BONA_FIDE, SPOOF])
def test_the_page_quotes_each_score_of_the_contract(score: str) -> None:
    assert f"`{score}`" in paragraph()


def test_the_bona_fide_example_goes_out_as_the_contract_prints_it() -> None:
    assert wire(BONA_FIDE) == BONA_FIDE


@pytest.mark.parametrize("score", [SPOOF, CLIP])
def test_what_the_page_says_a_score_is_answered_is_the_wire_value(score: str) -> None:
    assert stated(score) == wire(score)
