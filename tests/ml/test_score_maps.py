"""The shipped score maps (ml/score_maps.json): recomputed from the images through the real
models, validated leaving one source out, and applied by the engine per capture kind."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bench.finer_decode import encoded, wide_frame
from ml import calibration, fit_score_maps, profiles
from ml.engine import LivenessEngine
from ml.evaluate import Sample
from ml.fit_score_maps import Scored
from ml.profiles import CAPTURES, PROFILES, Platt
from tests.ml.conftest import DEV_DATA, REPO

VIDEO_DATA = REPO.parent / "shared" / "data" / "video"
FRAMES = fit_score_maps.FRAMES_PER_CLIP


@pytest.fixture(scope="module")
def samples(engine: LivenessEngine) -> list[Sample]:
    return fit_score_maps.collect(engine, DEV_DATA, VIDEO_DATA, FRAMES)


@pytest.fixture(scope="module")
def refitted(samples: list[Sample], engine: LivenessEngine) -> dict[str, Any]:
    return fit_score_maps.build(samples, engine.precision, FRAMES)


@pytest.mark.slow
def test_the_shipped_maps_are_what_the_images_give(refitted: dict[str, Any]) -> None:
    """Every profile's map of each kind, refitted from the dev images and the clips' frames,
    is the shipped one (DTN's bf16 moves thorough's a little between CPUs), and so are the
    provenance's counts of what it was fitted on."""
    shipped = profiles.score_maps()
    provenance = shipped["provenance"]
    assert provenance["fitted"] is True and provenance["tool"] == fit_score_maps.TOOL
    assert {"dev images", "video frames"} == {s["origin"] for s in provenance["sources"].values()}
    assert set(shipped["maps"]) == set(PROFILES)
    assert fit_score_maps.differences(shipped, refitted) == []
    assert refitted["provenance"]["sources"] == shipped["provenance"]["sources"]


@pytest.mark.slow
def test_the_shipped_leave_one_source_out_figures_are_recomputed(
    refitted: dict[str, Any],
) -> None:
    """The figures the docs quote are the ones the images give now (counts exactly)."""
    shipped = profiles.score_maps()["provenance"]["leave_one_source_out"]
    again = refitted["provenance"]["leave_one_source_out"]
    assert set(shipped) == set(PROFILES)
    for profile, groups in shipped.items():
        for group, when in groups.items():
            for moment in ("before", "after"):
                old, new = when[moment], again[profile][group][moment]
                for key in ("bona_fide", "attacks", "sources"):
                    assert old[key] == new[key], (profile, group, moment, key)
                for key in ("balanced_log_loss", "AUC", "APCER", "BPCER", "ACER"):
                    assert old[key] == pytest.approx(new[key], abs=0.03), (profile, group, key)


@pytest.mark.slow
def test_held_out_sources_are_better_calibrated_on_both_kinds(samples: list[Sample]) -> None:
    """What "0.5 means the same on both kinds" asks of a map: on sources it was not fitted on,
    its P(live) is a better probability than the identity's on frames and on crops alike
    (class-balanced cross-entropy, classes weighed as the fit weighs them). Both kinds have
    presentations of both classes from several sources, so neither can pass empty."""
    items = fit_score_maps.judged(samples)
    for profile in PROFILES:
        figures = fit_score_maps.loso_figures(items, profile)
        for kind in CAPTURES:
            before, after = figures[kind]["before"], figures[kind]["after"]
            assert after["sources"] >= 5 and after["bona_fide"] >= 20 and after["attacks"] >= 10
            assert after["balanced_log_loss"] < before["balanced_log_loss"], (profile, kind)


@pytest.mark.slow
def test_crops_are_judged_on_their_own_scale(samples: list[Sample]) -> None:
    """The maps differ by kind the way the data do: a live face crop's fused logit sits lower
    than a live full frame's, so the crop map's 0.5 lies at a lower logit than the frame
    map's, for every profile. (Each map's 0.5 is where it crosses: z = -b / a.)"""
    items = fit_score_maps.judged(samples)
    for profile in PROFILES:
        live = {
            k: [s.logit(profile) for s in items if (s.capture, s.label) == (k, "live")]
            for k in CAPTURES
        }
        assert np.median(live["crop"]) < np.median(live["frame"])
        crossing = {
            k: -profiles.shipped(profile, k).b / profiles.shipped(profile, k).a for k in CAPTURES
        }
        assert crossing["crop"] < crossing["frame"], profile


def test_the_engine_maps_each_kind_with_its_own_map(
    engine: LivenessEngine, dev_image: Callable[[str], bytes]
) -> None:
    """A full frame and a face crop of the dev set: each verdict's P(live) is its kind's
    shipped map of its fused logit, for every profile."""
    for name, kind in (("live/jomariya_1.jpg", "frame"), ("live/wolf_1.png", "crop")):
        image = engine.decode(dev_image(name))
        for profile in PROFILES:
            verdict = engine.analyse(image, profile)
            assert verdict.capture == kind
            platt = profiles.shipped(profile, kind)
            assert platt != calibration.IDENTITY
            expected = 1 / (1 + math.exp(-(platt.a * verdict.logit + platt.b)))
            assert verdict.p_live == pytest.approx(expected, rel=1e-9)


def test_a_clip_frame_is_decoded_and_judged_as_the_api_judges_it(
    engine: LivenessEngine, dev_image: Callable[[str], bytes], tmp_path: Path
) -> None:
    """A clip frame whose face is too small only at its JPEG's reduced decode (a dev selfie in
    a 1920x540 frame: 39 px at 1/4) is judged by the fit as /liveness judges it, decoded again
    at 1/2 (ml.engine, ``gated``): it passes the gates with the API's scores, where a single
    decode refused it face_too_small and left it out of the maps."""
    photo = cv2.imdecode(np.frombuffer(dev_image("live/minivision_1.jpg"), np.uint8), 1)
    assert photo is not None
    jpeg = encoded(wide_frame(photo, 1920, 540), ".jpg")
    (tmp_path / "manifest.csv").write_text("file,label,source_repo\nwide.mp4,live,test/wide\n")
    [sample] = fit_score_maps.video_samples(engine, tmp_path, {"wide.mp4#0": jpeg})
    api = engine.inspect(engine.decode_frame(jpeg))
    assert api.failures == [] and api.capture == "frame"
    assert (sample.failures, sample.capture, sample.source) == ([], "frame", "test/wide")
    assert sample.scores == pytest.approx(api.scores, abs=1e-6)


def _item(source: str, label: str, z: float, capture: str = "crop") -> Scored:
    # fused logit z for every profile: one model at P = sigmoid(z)
    p = 1 / (1 + math.exp(-z))
    return Scored(f"{source}/{label}/{z}", source, label, capture, dict.fromkeys(_models(), p))


def _models() -> list[str]:
    return sorted({name for profile in PROFILES.values() for name in profile.models})


def test_a_held_out_source_is_scored_by_maps_fitted_without_it() -> None:
    """A source whose live faces sit far below the others' moves the map when it is fitted
    on, so its held-out scores must be those of the map fitted on the other sources only."""
    others = [
        _item(src, label, z)
        for src in ("a", "b", "c")
        for label, zs in (("live", (1.0, 2.0, 3.0)), ("spoof", (-1.0, -2.0, -3.0)))
        for z in zs
    ]
    odd = [_item("odd", "live", z) for z in (-4.0, -5.0)] + [_item("odd", "spoof", -6.0)]
    held_out = fit_score_maps.leave_one_source_out(others + odd, "fast")
    without = fit_score_maps.fit_maps(others, "fast")["crop"]
    with_it = fit_score_maps.fit_maps(others + odd, "fast")["crop"]
    assert with_it != without
    scored = [(item, p) for item, p in held_out if item.source == "odd"]
    assert [item for item, _ in scored] == odd
    for item, p in scored:
        assert p == pytest.approx(without.p(item.logit("fast")), rel=1e-12)


def test_each_source_weighs_the_same_whatever_its_number_of_images() -> None:
    """A source sent five times over is still one channel: its copies barely move the map's
    0.5 (the larger sample only weighs more against the prior), while weighing images alike
    they pull it toward that source's level."""
    sources = {
        src: [
            _item(src, label, z + shift)
            for label, zs in (("live", (1.0, 2.0)), ("spoof", (-1.0, 0.5)))
            for z in zs
        ]
        for src, shift in (("a", -1.5), ("b", 0.0), ("c", 1.0))
    }
    items = [item for group in sources.values() for item in group]

    def crossing(platt: Platt) -> float:  # where the map says 0.5
        return -platt.b / platt.a

    def by_image(chosen: list[Scored]) -> Platt:
        z = {k: [i.logit("fast") for i in chosen if i.label == k] for k in ("live", "spoof")}
        return calibration.fit(np.asarray(z["live"]), np.asarray(z["spoof"]))

    copies = items + sources["a"] * 4
    by_source_moved = crossing(fit_score_maps.fit_maps(copies, "fast")["crop"]) - crossing(
        fit_score_maps.fit_maps(items, "fast")["crop"]
    )
    by_image_moved = crossing(by_image(copies)) - crossing(by_image(items))
    # source a sits lowest: weighing images, its copies pull the 0.5 down toward it; weighing
    # sources, only the sample's size against the prior changes (28 images instead of 12)
    assert by_image_moved < -0.3
    assert by_source_moved > 0 and abs(by_source_moved) < abs(by_image_moved) / 3


@pytest.mark.slow
def test_frames_are_spread_over_the_whole_clip() -> None:
    """Frames of a clip come from its start to its end (read to the end: some headers give a
    wrong frame count), not from its first seconds."""
    clip = VIDEO_DATA / "lestari_real.mp4"
    reader, total = cv2.VideoCapture(str(clip)), 0
    while reader.grab():
        total += 1
    reader.release()
    frames = fit_score_maps.clip_frames(clip, 6)
    indices = [index for index, _ in frames]
    assert len(frames) == 6 and indices == sorted(set(indices))
    assert indices[0] < total / 6 and indices[-1] >= total * 5 / 6
    assert all(image.shape[2] == 3 for _, image in frames)


def held_out(label: str, score: float, capture: str = "frame", cut: bool = False) -> Any:
    return (Scored("x", "s", label, capture, {}, cut), score)


def test_the_band_rule_takes_the_largest_step_asking_at_most_a_fifth() -> None:
    """The rule alone, on scores made for it: 10 bona fide at logits 0.1, 0.3, ..., 1.9 from the
    threshold; 0.25 holds 1 (10 %), 0.5 holds 2 (20 %: allowed), 0.75 would hold 4."""
    z = [0.1 + 0.2 * i for i in range(10)]
    pairs = [held_out("live", 1 / (1 + math.exp(-v))) for v in z]
    pairs += [held_out("spoof", 0.5), held_out("live", 0.5, "crop", cut=True)]  # not counted
    assert fit_score_maps.default_band(pairs) == 0.5
    figures = fit_score_maps.band_figures(pairs, 0.5)
    assert figures["all"]["bona_fide"] == 10 and figures["all"]["bona_fide_asked"] == 0.2
    assert figures["all"]["errors"] == 1 and figures["all"]["errors_in_band"] == 1.0  # the attack
    assert figures["crop"]["bona_fide"] == 0 and figures["crop"]["bona_fide_asked"] is None
    assert fit_score_maps.default_band([held_out("live", 0.5)] * 5) == 0.0


BAND_ROW = re.compile(
    r"^\| (all|frame|crop|app-cut crop) \| (\d+) \| ([\d.]+) \| (\d+) \| ([\d.]+) \|$"
)


@pytest.mark.slow
def test_the_documented_band_is_what_the_rule_gives(
    samples: list[Sample], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m ml.fit_score_maps --band`` (on the samples already collected) prints the
    tenant field's default band and the figures docs/evaluator/head-turn.md gives."""
    from accounts.models import DEFAULT_CHALLENGE_BAND

    monkeypatch.setattr(fit_score_maps, "collect", lambda *args: samples)
    assert fit_score_maps.main(["--band"]) == 0
    printed = capsys.readouterr().out
    assert f": {DEFAULT_CHALLENGE_BAND:g} logits" in printed
    page = (REPO / "docs" / "evaluator" / "head-turn.md").read_text()
    documented = [m.groups() for line in page.splitlines() if (m := BAND_ROW.match(line))]
    assert [row[0] for row in documented] == ["all", "frame", "crop", "app-cut crop"]
    for group, bona_fide, asked, errors, in_band in documented:
        (line,) = [x for x in printed.splitlines() if x.startswith(f"{group}  ")]
        values = line[len(group) :].split()
        assert (values[0], values[2]) == (bona_fide, errors), group  # counts exactly
        assert float(values[1]) == pytest.approx(float(asked), abs=0.03), group
        assert float(values[3]) == pytest.approx(float(in_band), abs=0.03), group


def test_the_documented_range_of_a_crops_score_is_the_maps() -> None:
    """accuracy.md tells a tenant how high a crop's score can go (a threshold above it judges no
    crop live): the shipped crop maps of the clipped logits' ends."""
    page = (REPO / "docs" / "evaluator" / "accuracy.md").read_text()
    said = " ".join(page.split())
    end = math.log((1 - profiles.EPS) / profiles.EPS)
    for profile in ("fast", "thorough"):
        crop = profiles.shipped(profile, "crop")
        low, high = (float(crop(-end)), float(crop(end)))
        assert f"{low:.3f} and {high:.3f} with `{profile}`" in said
