"""The calibration figures' table names the mean of APCER and BPCER (every attack pooled) HTER,
says how its interval is made, and renders calibrations stored when it was called ACER."""

from __future__ import annotations

import re

from calibration.pages import intervals_table

NEW = {"APCER": [0.25, 0.1, 0.5], "BPCER": [0.1, 0.02, 0.3], "HTER": [0.175, 0.06, 0.4]}
OLD = {k if k != "HTER" else "ACER": v for k, v in NEW.items()}  # stored before HTER


def test_the_pooled_mean_is_hter_with_its_interval_said_and_old_ones_render() -> None:
    """It was headed ACER (ISO's takes the worst species' APCER: on dev 26.3 % against this
    mean's 21.4 %), its interval, the mean of the two rates' bounds, shown as a 95 % one."""
    table = str(intervals_table([("new", NEW), ("old", OLD)], "calibration-figures", True))
    heads = re.findall(r"<th>([A-Z]+)</th>", table)
    assert heads == ["APCER", "BPCER", "HTER", "AUC"]
    caption = re.search(r"<caption>(.*?)</caption>", table)
    assert caption is not None and "not ISO&#x27;s ACER" in caption[1]
    assert "mean of theirs&#x27; bounds, at least 90 %" in caption[1]
    rows = re.findall(r"<tr><th>(new|old)</th>(.*?)</tr>", table)
    assert [name for name, _ in rows] == ["new", "old"]
    assert rows[0][1] == rows[1][1]  # the stored ACER shows in the HTER column
    assert "<td>17.5% [6.0%, 40.0%]</td>" in rows[0][1]
