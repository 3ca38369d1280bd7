"""bench.channel_shift on a few dev images through the real engine: the table's structure, a
control that changes nothing, and changes of channel that really move what the engine sees."""

from __future__ import annotations

import csv
from typing import Any

import pytest

from bench import channel_shift
from ml.engine import LivenessEngine
from ml.install import default_model_dir, install_models
from tests.ml.conftest import DEV_DATA, MODEL_SOURCE

# Two full frames (one of them EXIF-rotated, so the control also checks that the pixels sent
# are the upright ones the engine judged) and WOLF-huo's face crops (about 300 px wide).
FILES = ("live/minivision_1.jpg", "spoof/minivision_2.jpg")
CROPS = ("live/wolf_1.png", "live/wolf_2.png", "spoof/wolf_7.png", "spoof/wolf_8.png")
CHOSEN = ("lossless", "blur 2", "down 0.25x")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    install_models(MODEL_SOURCE, default_model_dir())
    engine = LivenessEngine.load(default_model_dir(), eager=["fast"])
    with (DEV_DATA / "manifest.csv").open(newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    labelled = [
        (name, rows[name]["source_repo"], rows[name]["label"], (DEV_DATA / name).read_bytes())
        for name in FILES + CROPS
    ]
    transforms = {name: channel_shift.TRANSFORMS[name] for name in CHOSEN}
    return channel_shift.run(engine, labelled, "fast", transforms)


def _rows(doc: dict[str, Any], transform: str) -> list[dict[str, Any]]:
    return [r for r in doc["rows"] if r["transform"] == transform]


@pytest.mark.slow
def test_one_row_per_transform_kind_and_class(doc: dict[str, Any]) -> None:
    kinds = {(p["kind"], p["name"].split("/")[0]) for p in doc["presentations"]}
    # the two frames, their app-cut crops, and the four crops
    assert len(doc["presentations"]) == 8
    assert kinds == {(k, label) for k in channel_shift.KINDS for label in ("live", "spoof")}
    keys = [(r["transform"], r["kind"], r["label"]) for r in doc["rows"]]
    assert keys == [
        (t, k, c) for t in CHOSEN for k in channel_shift.KINDS for c in ("live", "spoof")
    ]
    assert sum(r["n"] for r in _rows(doc, "lossless")) == 8
    assert all(r["judged"] + r["refused"] == r["n"] for r in doc["rows"])
    crops = [s for s in doc["spread"] if s["kind"] == "crop"]
    assert [(s["label"], list(s["sources"])) for s in crops] == [
        ("live", ["WOLF-huo/face_liveness"]),
        ("spoof", ["WOLF-huo/face_liveness"]),
    ]
    table = channel_shift.format_table(doc["rows"])
    assert len(table.splitlines()) == 1 + len(doc["rows"])


@pytest.mark.slow
def test_the_same_pixels_change_nothing(doc: dict[str, Any]) -> None:
    for row in _rows(doc, "lossless"):
        assert (row["judged"], row["kind_changed"], row["flipped"]) == (row["n"], 0, 0.0), row
        assert row["mean"] == row["median"] == 0.0, row
        assert row["sharpness_ratio"] == 1.0
        assert row["auc_after"] == row["auc_before"]


@pytest.mark.slow
def test_a_strong_blur_takes_the_detail_and_moves_every_score(doc: dict[str, Any]) -> None:
    rows = _rows(doc, "blur 2")
    for row in rows:
        assert set(row["refusals"]) <= {"too_blurry"}, row  # refused for the reason it is
        if row["judged"]:
            assert row["sharpness_ratio"] < 0.6, row  # the gate's measure of the face's detail
            assert row["mean"] != 0.0, row
    assert sum(r["refused"] for r in rows) >= 1  # the live frame's face falls under the gate
    assert sum(r["judged"] for r in rows) >= 4


@pytest.mark.slow
def test_a_face_made_too_small_is_counted_as_refused(doc: dict[str, Any]) -> None:
    frames = [r for r in _rows(doc, "down 0.25x") if r["kind"] == "frame"]
    # a 640x480 frame at a quarter: its face is under the 64 px the gates ask for
    assert [(r["n"], r["refused"], r["refusals"]) for r in frames] == [
        (1, 1, {"face_too_small": 1})
    ] * 2
    assert all(r["judged"] == 0 and r["interval"] is None for r in frames)
