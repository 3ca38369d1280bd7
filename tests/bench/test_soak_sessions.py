"""bench.soak_sessions' judgement of a run, without a server: the session table's plateau and
the unexpected answers kept (tests/system/test_soak_sessions.py runs the mode itself)."""

from pathlib import Path

from bench.soak_sessions import Samples, Tally, plateau


def samples(before_each_prune: list[int]) -> Samples:
    found = Samples(0, Path("unused"))
    found.prunes = [(60.0 * (i + 1), n, "deleted") for i, n in enumerate(before_each_prune)]
    return found


def test_rows_that_come_back_down_after_each_prune_plateau() -> None:
    assert plateau(samples([96, 101, 94]))


def test_rows_that_keep_growing_across_prunes_do_not() -> None:
    assert not plateau(samples([96, 150, 210]))


def test_one_prune_is_not_judged() -> None:
    assert plateau(samples([96]))


def test_unexpected_answers_are_all_counted_the_first_20_kept() -> None:
    tally = Tally()
    for i in range(25):
        tally.count("open 500", False, f"body {i}")
    tally.count("open 201", True)
    assert tally.statuses == {"open 500": 25, "open 201": 1}
    assert len(tally.unexpected) == 25
    assert [line for line in tally.unexpected if line][-1] == "open 500: body 19"
