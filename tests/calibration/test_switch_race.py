"""Calibration switches of one tenant at once (PostgreSQL: SQLite's write transaction already
holds the whole database, so two switches cannot interleave there). Each switch locks the
tenant's row and decides from what it reads under the lock (``Tenant.lock``)."""

from typing import Any

import pytest

from tests.conftest import run_on_database, scratch_database


def switched(first: str, second: str) -> dict[str, Any]:
    with scratch_database("facia_switch") as url:
        outcome = run_on_database("tests.calibration.switch_race", url, first, second)
    assert outcome["vendor"] == "postgresql"
    return outcome


def test_two_promotions_of_one_candidate_promote_it_once() -> None:
    """Unlocked, both read the candidate and both promoted it: two history entries."""
    outcome = switched("promote", "promote")
    assert sorted(outcome["results"]) == ["no shadow", "promoted"]
    assert outcome["active"] == outcome["candidate"] and outcome["shadow"] is None
    assert outcome["threshold"] == 0.61 and not outcome["candidate_set_aside"]


@pytest.mark.parametrize("other", ["discard", "job"])
def test_a_promotion_racing_another_switch_leaves_one_consistent_state(other: str) -> None:
    """Unlocked, a discard (or an upload job's new candidate, from the tenant it read when it
    began) marked the candidate set aside while the promotion made it the active one."""
    outcome = switched("promote", other)
    if outcome["active"] == outcome["candidate"]:  # the promotion came first
        assert not outcome["candidate_set_aside"] and outcome["threshold"] == 0.61
        assert outcome["results"][1] == ("shadowed" if other == "job" else "no shadow")
    else:  # the other came first: nothing promoted, not even the job's newer candidate
        assert outcome["results"][0] == "no shadow"
        assert outcome["active"] is None and outcome["candidate_set_aside"]
        assert outcome["threshold"] == 0.5
    expected_shadow = outcome["newer"] if other == "job" else None
    assert outcome["shadow"] == expected_shadow and not outcome["newer_set_aside"]
