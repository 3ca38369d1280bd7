"""The tenant-by-source protocol on the dev set (``manage.py tenant_protocol``)."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ml.evaluate import Report, Sample
from ml.protocol import halves, run
from tests.conftest import DEV_DATA


def sample(name: str, label: str, z: float, source: str = "s") -> Sample:
    p = 1 / (1 + 2.718281828459045 ** (-z))
    scores = {"minifasnet_v2": p, "minifasnet_v1se": p, "hyperfas": p}
    return Sample(name, label, "none", [], scores, capture="frame", source=source)


def test_halves_are_stratified_and_disjoint() -> None:
    samples = [sample(f"live/{i}", "live", 1.0) for i in range(6)]
    samples += [sample(f"spoof/{i}", "spoof", -1.0) for i in range(5)]
    first, second = halves(samples)
    assert {s.file for s in first}.isdisjoint({s.file for s in second})
    assert [sum(s.label == "live" for s in h) for h in (first, second)] == [3, 3]
    assert [sum(s.label == "spoof" for s in h) for h in (first, second)] == [3, 2]


def test_a_shifted_source_is_fixed_by_its_own_calibration() -> None:
    """Two sources, each separable but at a different level: pooled uncalibrated at 0.5 one
    source's lives are rejected; calibrated per source, none are."""
    samples = []
    for source, shift in (("high", 0.0), ("low", -4.0)):
        samples += [
            sample(f"live/{source}{i}", "live", 2 + shift + i / 10, source) for i in range(6)
        ]
        samples += [
            sample(f"spoof/{source}{i}", "spoof", -1 + shift + i / 10, source) for i in range(6)
        ]
    outcome = run(Report(0.5, "fast", "x", samples))
    assert outcome.uncalibrated["BPCER"][0] == 0.5
    assert outcome.calibrated["BPCER"][0] == 0.0 and outcome.calibrated["APCER"][0] == 0.0
    # calibrate's own procedure on the same halves: with the threshold at APCER = BPCER too
    eer = outcome.procedure["calibrate --equal-error-rate"]
    assert eer["BPCER"][0] == 0.0 and eer["APCER"][0] == 0.0
    assert eer["bona_fide"] == 12 and eer["attacks"] == 12
    assert set(outcome.per_source) == {"high", "low"}


@pytest.mark.slow  # 19 s at load 8: the dev set per source
@pytest.mark.usefixtures("warm_engine")
def test_protocol_on_dev_prints_pooled_figures(db: None) -> None:
    out = StringIO()
    call_command("tenant_protocol", str(DEV_DATA), stdout=out)
    text = out.getvalue()
    assert "8 sources" in text
    labels = ("uncalibrated (threshold 0.5)", "calibrated per source", "calibrate, threshold kept")
    for label in (*labels, "calibrate --equal-error-rate"):
        line = next(x for x in text.splitlines() if label in x)
        assert re.search(r"ACER \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", line)
    assert re.search(r"pooled over 43 bona fide and 36 attack", text)


def test_protocol_needs_a_manifest(db: None, tmp_path: object) -> None:
    with pytest.raises(CommandError, match="manifest"):
        call_command("tenant_protocol", str(tmp_path))
