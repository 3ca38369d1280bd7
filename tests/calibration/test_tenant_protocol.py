"""The tenant-by-source protocol on the dev set (``manage.py tenant_protocol``)."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ml import calibration, protocol
from ml.engine import LivenessEngine
from ml.evaluate import Report, Sample
from ml.protocol import halves, run
from tests.calibration.conftest import compiled_fast_only
from tests.conftest import DEV_DATA, subset_of_dev

LIVE_UNNAMED = DEV_DATA / "live" / "wolf_1.png"  # a face crop the gates judge


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
    """Two sources, each separable but at a different level: pooled uncalibrated (the shipped
    maps) at 0.5 one source's lives are rejected; calibrated per source, none are."""
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
    # per source, calibrate's default rule against the shipped maps, error by error
    low = outcome.per_source["low"]
    assert (low["uncalibrated"]["BPCER"][0], low["uncalibrated"]["APCER"][0]) == (1.0, 0.0)
    assert low["calibrated"]["BPCER"][0] < 1.0
    assert not any(protocol.worse_beyond_interval(i) for i in outcome.per_source.values())


def figures(live_wrong: int, live: int, spoof_wrong: int, spoof: int) -> dict[str, object]:
    return calibration.figures_of_decisions(live_wrong, live, spoof_wrong, spoof, float("nan"))


def test_a_source_made_worse_beyond_its_interval_is_flagged() -> None:
    """HTER 0.05 [0.009, 0.341] on 10 + 10 images: calibrated to 0.40 is beyond its interval,
    0.30 is not; a one-class source is compared on its one error rate."""
    before = figures(1, 10, 0, 10)
    assert protocol.worse_beyond_interval(
        {"uncalibrated": before, "calibrated": figures(4, 10, 4, 10)}
    )
    assert not protocol.worse_beyond_interval(
        {"uncalibrated": before, "calibrated": figures(3, 10, 3, 10)}
    )
    only_live = {"uncalibrated": figures(0, 6, 0, 0), "calibrated": figures(4, 6, 0, 0)}
    assert protocol.headline(only_live["calibrated"])[0] == "BPCER"
    assert protocol.worse_beyond_interval(only_live)


@pytest.mark.slow  # 19 s at load 8: the dev set per source
@pytest.mark.usefixtures("warm_engine")
def test_protocol_on_dev_prints_pooled_figures(
    db: None, loaded_engines: list[LivenessEngine]
) -> None:
    out = StringIO()
    call_command("tenant_protocol", str(DEV_DATA), stdout=out)
    assert compiled_fast_only(loaded_engines)  # the default profile's models only
    text = out.getvalue()
    assert "8 sources" in text
    labels = (
        "uncalibrated (shipped maps, 0.5)",
        "calibrated per source",
        "calibrate, threshold kept",
    )
    for label in (*labels, "calibrate --equal-error-rate"):
        line = next(x for x in text.splitlines() if label in x)
        assert re.search(r"HTER \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", line)
    assert re.search(r"pooled over 43 bona fide and 36 attack", text)
    assert "the shipped maps were fitted on 8 of these sources" in text
    per_source = [x for x in text.splitlines() if re.search(r" at  (HTER|BPCER|APCER) ", x)]
    assert len(per_source) == 8
    assert re.search(r"sources worse after calibration than their interval: \d+", text)


def test_protocol_needs_a_manifest(db: None, tmp_path: object) -> None:
    with pytest.raises(CommandError, match="manifest"):
        call_command("tenant_protocol", str(tmp_path))


@pytest.mark.parametrize(
    ("manifest", "said"),
    [
        ("file,label\nlive/a.jpg,live\n", "manifest.csv has no source (or source_repo) column."),
        (
            "file,label,source\nlive/a.jpg,live,\nspoof/b.jpg,spoof,\n",
            "manifest.csv: its source column is empty on every row, so no image has a source.",
        ),
        (
            "file,source,source_repo\nlive/a.jpg,,\n",
            "its source and source_repo columns are empty on every row, so no image has a source.",
        ),
    ],
    ids=["no-column", "empty-column", "empty-columns"],
)
def test_a_manifest_naming_no_source_is_refused_before_scoring(
    tmp_path: Path, manifest: str, said: str
) -> None:
    """The column there but empty on every row was said to be missing, and only once every
    image had been scored: the manifest is read for its sources first, and the reason is told."""
    for label, name in (("live", "a.jpg"), ("spoof", "b.jpg")):
        (tmp_path / label).mkdir()
        (tmp_path / label / name).write_bytes(LIVE_UNNAMED.read_bytes())
    (tmp_path / "manifest.csv").write_text(manifest)
    with pytest.raises(CommandError) as refused:
        call_command("tenant_protocol", str(tmp_path), stdout=StringIO())
    assert str(refused.value).endswith(said)


def test_a_manifest_whose_sources_name_no_image_in_the_folder_says_so(
    db: None, tmp_path: Path
) -> None:
    for label in ("live", "spoof"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "a.png").write_bytes(LIVE_UNNAMED.read_bytes())
    (tmp_path / "manifest.csv").write_text("file,source\nlive/elsewhere.png,s\n")
    with pytest.raises(CommandError) as refused:
        call_command("tenant_protocol", str(tmp_path), stdout=StringIO())
    assert str(refused.value) == (
        f"No image in {tmp_path} has a source: the rows of its manifest.csv that name one name "
        "no image of live/ or spoof/."
    )


@pytest.mark.parametrize(
    ("folders", "manifest", "why"),
    [
        ((), "file,label,source\nlive/a.jpg,live,s\n", "live/ and spoof/"),
        (("live", "spoof"), "path,label,source\nlive/a.jpg,live,s\n", "has no file column"),
        (("live", "spoof"), "file,label,source\nlive/a.jpg,live,s\n", "has no image"),
    ],
    ids=["no-image-folders", "no-file-column", "no-images"],
)
def test_tenant_protocol_rejects_a_bad_folder(
    tmp_path: Path, folders: tuple[str, ...], manifest: str, why: str
) -> None:
    """Each is refused, not a traceback (FileNotFoundError, KeyError) after the engine loads."""
    for label in folders:
        (tmp_path / label).mkdir()
    (tmp_path / "manifest.csv").write_text(manifest)
    with pytest.raises(CommandError, match=why):
        call_command("tenant_protocol", str(tmp_path), stdout=StringIO())


@pytest.mark.usefixtures("warm_engine")
def test_a_one_class_set_prints_dashes_and_says_what_it_left_out(db: None, tmp_path: Path) -> None:
    """A bona fide-only set prints dashes, not "APCER nan [nan, nan]"; images the manifest names
    no source for are left out of every figure, and the command says so."""
    folder = subset_of_dev(tmp_path, lambda row: row["file"].startswith("live/jomariya_"))
    (folder / "live" / LIVE_UNNAMED.name).symlink_to(LIVE_UNNAMED)
    out = StringIO()
    call_command("tenant_protocol", str(folder), stdout=out)
    text = out.getvalue()
    assert not re.search(r"\bnan\b", text)
    assert "  uncalibrated (shipped maps, 0.5)  APCER -  BPCER " in text
    assert "pooled over 6 bona fide and 0 attack presentations" in text
    assert text.endswith("1 judged image has no source in the manifest and is left out.\n")
