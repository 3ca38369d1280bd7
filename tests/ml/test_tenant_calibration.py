"""The tenant calibration's maths without the engine: the prior that gives way as the sample
grows, per capture kind, the exact "needs N more" message, and figures that are held out."""

from __future__ import annotations

import numpy as np
import pytest

from ml import calibration, pad_metrics, tenant_calibration
from ml.profiles import Platt
from ml.tenant_calibration import Rule, Sample

SHIPPED = {"frame": Platt(1.0, 0.0), "crop": Platt(0.8, -1.0)}
# The channel's own logits per kind: live ~ N(mu1, sd), spoof ~ N(mu0, sd); with classes
# weighed equally its true map is a = (mu1 - mu0) / sd^2, b = (mu0^2 - mu1^2) / (2 sd^2).
CHANNEL = {"frame": (3.0, -1.0, 1.5), "crop": (1.0, -2.0, 1.5)}
TRUE = {
    kind: Platt((mu1 - mu0) / sd**2, (mu0**2 - mu1**2) / (2 * sd**2))
    for kind, (mu1, mu0, sd) in CHANNEL.items()
}


def drawn(kind: str, n: int, seed: int) -> list[Sample]:
    """``n`` images of ``kind`` from the channel (the first half live, at least one of each)."""
    rng = np.random.default_rng(seed)
    mu1, mu0, sd = CHANNEL[kind]
    live = (n + 1) // 2
    return [Sample(float(rng.normal(mu1, sd)), True, kind) for _ in range(live)] + [
        Sample(float(rng.normal(mu0, sd)), False, kind) for _ in range(n - live)
    ]


def distance(a: Platt, b: Platt) -> float:
    return float(np.hypot(a.a - b.a, a.b - b.b))


@pytest.mark.parametrize("kind", ["frame", "crop"])
def test_few_images_move_the_shipped_map_a_little_many_a_lot(kind: str) -> None:
    moved = {}
    for n in (3, 30, 300, 3000):
        samples = drawn(kind, n, seed=n)
        fits = tenant_calibration.fit_kinds(samples, SHIPPED, SHIPPED)
        assert fits[kind].fitted and fits[kind].weight == pytest.approx(n / (n + 20))
        other = "crop" if kind == "frame" else "frame"
        assert not fits[other].fitted and fits[other].after == SHIPPED[other]  # no images
        moved[n] = distance(fits[kind].after, SHIPPED[kind]) / distance(TRUE[kind], SHIPPED[kind])
    assert moved[3] < 0.35  # 3 images: a little of the way to the channel's map
    assert moved[300] > 0.75 and moved[3000] > 0.9  # hundreds: most of the way
    assert moved[3] < moved[30] < moved[300]


def test_the_prior_is_centred_on_the_shipped_map_of_the_kind() -> None:
    one_each = [Sample(0.5, True, "crop"), Sample(-0.5, False, "crop")]
    fit = tenant_calibration.fit_kinds(one_each, SHIPPED, SHIPPED)["crop"]
    assert fit.fitted
    # two images: the map stays near the crop's shipped map, not the identity
    assert distance(fit.after, SHIPPED["crop"]) < distance(fit.after, Platt())


def test_maps_stay_increasing_even_for_inverted_scores() -> None:
    inverted = [Sample(float(z), z < 0, "frame") for z in np.linspace(-4, 4, 200)]
    fit = tenant_calibration.fit_kinds(inverted, SHIPPED, SHIPPED)["frame"]
    assert fit.after.a >= calibration.MIN_SLOPE
    z = np.linspace(-8, 8, 101)
    assert np.all(np.diff(fit.after(z)) > 0)


def test_needs_says_how_many_more_of_which_class_and_kind() -> None:
    assert tenant_calibration.needs([]) == (
        "Too few images to calibrate: a capture kind is calibrated from at least 1 live and 1 "
        "spoof image of that kind. Needs 1 more live image of a full frame and 1 more spoof "
        "image of a full frame, or 1 more live image of a face crop and 1 more spoof image of "
        "a face crop."
    )
    three_live_frames = [Sample(1.0, True, "frame")] * 3 + [Sample(-1.0, False, "crop")]
    assert tenant_calibration.needs(three_live_frames) == (
        "Too few images to calibrate: a capture kind is calibrated from at least 1 live and 1 "
        "spoof image of that kind. Needs 1 more spoof image of a full frame, or 1 more live "
        "image of a face crop."
    )
    assert tenant_calibration.needs([Sample(1.0, True, "crop"), Sample(0.0, False, "crop")]) is None


def test_one_image_of_each_class_calibrates_without_held_out_figures() -> None:
    samples = [Sample(1.0, True, "crop"), Sample(-1.0, False, "crop")]
    result = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5)
    assert result.held_out is None
    assert result.held_out_needs == (
        "No held-out figures: they need at least 2 live and 2 spoof images "
        "(1 more live image and 1 more spoof image)."
    )
    text = tenant_calibration.report(result)
    assert "Full frames: no full frames in the sample; the shipped map is kept" in text
    assert "Face crops (1 live and 1 spoof): slope 0.800 → " in text
    assert "weigh 9% against the shipped map" in text  # 2 / (2 + 20)
    assert "Threshold 0.5000: kept" in text
    assert result.figures()["held_out"] is None


def _in_sample_acer(result: tenant_calibration.Result, samples: list[Sample]) -> float:
    live, spoof = tenant_calibration.scores(result.maps, samples)
    return float(np.mean(pad_metrics.apcer_bpcer(live, spoof, result.threshold)))


def test_figures_are_held_out_and_differ_from_in_sample() -> None:
    """Overlapping classes and a threshold chosen on the sample: in sample it looks better
    than it is. The report's figures are those of each image scored by a fit without it."""
    rng = np.random.default_rng(7)
    samples = [Sample(float(z), True, "frame") for z in rng.normal(0.6, 1.0, 12)]
    samples += [Sample(float(z), False, "frame") for z in rng.normal(-0.6, 1.0, 12)]
    rule = Rule(equal_error=True)
    result = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5, rule)
    assert result.held_out is not None and result.held_out.method == "leave-one-image-out"

    # recomputed here: each image scored by the maps and threshold fitted without it
    rejected = accepted = 0
    for i, s in enumerate(samples):
        rest = samples[:i] + samples[i + 1 :]
        fits = tenant_calibration.fit_kinds(rest, SHIPPED, SHIPPED)
        maps = {k: f.after for k, f in fits.items()}
        threshold = rule.threshold(maps, rest, 0.5)
        p = maps["frame"].p(s.z)
        rejected += s.live and p < threshold
        accepted += (not s.live) and p >= threshold
    held_acer = (accepted / 12 + rejected / 12) / 2
    assert result.held_out.figures["HTER"][0] == pytest.approx(held_acer)
    in_sample = _in_sample_acer(result, samples)
    assert in_sample < held_acer  # the in-sample figure flatters: it is not what is reported
    text = tenant_calibration.report(result)
    assert "held out (leave-one-image-out)" in text
    assert f"HTER {in_sample:.1%}" not in text.split("calibrated, held out")[1].splitlines()[0]
    assert "intervals may be too narrow" in text  # no groups named: said so
    # the pooled mean was printed "ACER" (ISO's takes the worst species), its interval unsaid
    assert "ACER" not in text.replace("not ISO's ACER", "")
    assert "HTER = (APCER + BPCER) / 2" in text and "at least 90 %" in text
    assert "held-out HTER" in text


def test_groups_are_left_out_whole_and_intervals_count_them() -> None:
    samples = []
    for g in range(4):
        samples += [Sample(1.0 + g, True, "frame", f"s{g}")] * 5
        samples += [Sample(-1.0 - g, False, "frame", f"s{g}")] * 5
    result = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5, group_kind="source")
    assert result.held_out is not None
    assert result.held_out.method == "leave-one-source-out" and result.held_out.folds == 4
    figs = result.held_out.figures
    assert (figs["bona_fide"], figs["bona_fide_units"]) == (20, 4)
    # the interval of a rate over 4 sources is that of 4 observations, not 20
    assert figs["BPCER"][2] == pytest.approx(calibration.wilson(0, 4)[1])
    assert "intervals over sources" in tenant_calibration.report(result)


def test_a_kind_with_one_class_keeps_its_map_and_says_what_it_needs() -> None:
    samples = [Sample(1.0, True, "frame"), Sample(2.0, True, "frame")]
    samples += [Sample(1.0, True, "crop"), Sample(-2.0, False, "crop")]
    result = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5)
    assert result.fits["frame"].after == SHIPPED["frame"]
    assert (
        "Full frames: 2 live and 0 spoof full frames: calibrating them needs at least 1 more "
        "spoof image of a full frame; the shipped map is kept (slope 1.000, offset 0.000)."
    ) in result.sentences


def test_the_score_words_are_true() -> None:
    samples = drawn("crop", 300, seed=1)
    result = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5)
    crop = result.fits["crop"]
    z = -SHIPPED["crop"].b / SHIPPED["crop"].a  # scored 0.50 under the shipped map
    said = next(s for s in result.sentences if s.startswith("Face crops"))
    assert f"a face crop that scored 0.50 now scores {crop.after.p(z):.2f}" in said


def test_old_single_maps_apply_to_both_kinds() -> None:
    maps = calibration.maps_of({"id": 3, "a": 1.5, "b": -0.2, "profile": "fast"})
    assert maps == {"frame": Platt(1.5, -0.2), "crop": Platt(1.5, -0.2)}
    new = calibration.maps_of({"maps": {"frame": {"a": 1, "b": 0}, "crop": {"a": 2, "b": 1}}})
    assert new["crop"] == Platt(2.0, 1.0)


def test_a_kind_the_sample_cannot_calibrate_says_which_map_it_gets() -> None:
    """A kind without both classes takes the shipped map: "kept" when the tenant had it; a
    tenant calibrated on full frames that recalibrates on face crops alone sends its frames
    back to the shipped map, which the sentence said was "kept"."""
    crops = drawn("crop", 6, seed=1)
    fresh = tenant_calibration.run(crops, SHIPPED, SHIPPED, 0.5).sentences[0]
    assert fresh == (
        "Full frames: no full frames in the sample; the shipped map is kept "
        "(slope 1.000, offset 0.000)."
    )
    calibrated = {**SHIPPED, "frame": Platt(1.5, 0.5)}
    said = tenant_calibration.run(crops, SHIPPED, calibrated, 0.5).sentences[0]
    assert said == (
        "Full frames: no full frames in the sample; full frames go back to the shipped map: "
        "slope 1.500 → 1.000, offset 0.500 → 0.000; a full frame that scored 0.50 now scores "
        "0.42 (lower)."
    )
    assert f"{SHIPPED['frame'].p(-0.5 / 1.5):.2f}" == "0.42"  # z of 0.50 under (1.5, 0.5)


def test_images_naming_no_source_are_fitted_on_but_left_out_of_the_figures() -> None:
    """Half of a sample without a manifest row: each was a unit of its own in a run still
    called leave-one-source-out, its intervals "over sources" (the audit's acme12 sample:
    APCER [4.6 %, 69.9 %] became [8.1 %, 55.8 %]), and a left-out source's rowless images
    stayed in its fit."""
    named, rowless = [], []
    for g in range(4):
        named += [
            Sample(1.0 + g, True, "frame", f"s{g}"),
            Sample(-1.0 - g, False, "frame", f"s{g}"),
        ]
        rowless += [Sample(0.5 + g, True, "frame"), Sample(-0.5 - g, False, "frame")]
    result = tenant_calibration.run(named + rowless, SHIPPED, SHIPPED, 0.5, group_kind="source")
    assert result.fits["frame"].live + result.fits["frame"].spoof == 16  # fitted on all
    assert result.held_out is not None and result.held_out.method == "leave-one-source-out"
    for figs in (result.held_out.figures, result.now):
        assert (figs["bona_fide"], figs["attacks"]) == (4, 4)
        assert (figs["bona_fide_units"], figs["attack_units"]) == (4, 4)
    assert result.unnamed == 8 and result.figures()["unnamed"] == 8
    assert (
        "8 of the 16 images name no source (no manifest row, or an empty cell): the maps are "
        "fitted on all 16, the figures count only the 8 that name one (an image of unknown "
        "source may be of the source left out)."
    ) in result.sentences
    assert "at least 90 %), over the 8 images naming a source:" in tenant_calibration.report(result)


def test_a_sample_naming_no_source_at_all_is_counted_by_image() -> None:
    samples = drawn("frame", 10, seed=3)
    result = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5)
    assert result.unnamed == 0 and result.held_out is not None
    assert result.held_out.method == "leave-one-image-out"
    assert result.held_out.figures["bona_fide"] + result.held_out.figures["attacks"] == 10


def test_now_says_which_maps_it_applies_and_where_they_are_in_sample() -> None:
    """ "now (threshold 0.5000, not fitted)" of a tenant whose calibration was fitted on these
    very images: its figures were in-sample; the shipped maps too on the sources they were
    fitted on."""
    samples = []
    for g in range(3):
        samples += [Sample(1.0 + g, True, "crop", f"s{g}"), Sample(-1.0, False, "crop", f"s{g}")]
    result = tenant_calibration.run(
        samples,
        SHIPPED,
        {**SHIPPED, "crop": Platt(0.9, -0.5)},
        0.5,
        group_kind="source",
        current="calibration #7's maps",
        shipped_sources={"s1", "elsewhere"},
    )
    text = tenant_calibration.report(result)
    assert "  now: calibration #7's maps, not refitted (threshold 0.5000) " in text
    assert "not fitted" not in text
    assert (
        "The figures now use calibration #7's maps as they are, not refitted on this sample: "
        "on any image of this sample that calibration was fitted on, they are in-sample."
    ) in result.sentences
    assert (
        "The shipped maps, the prior of every fit, were fitted on 1 of this sample's 3 sources "
        "(s1): on those, every figure here, held out too, is in-sample for the prior."
    ) in result.sentences
    plain = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5, group_kind="source")
    assert "  now: the shipped maps, not refitted (threshold 0.5000) " in tenant_calibration.report(
        plain
    )
    assert not any("in-sample" in s for s in plain.sentences)


def test_more_images_of_a_single_source_are_asked_from_another() -> None:
    """1 live + 1 spoof of one source asked for "1 more live image and 1 more spoof image";
    two more of that source still gave no held-out figures (one unit)."""
    one = [Sample(1.0, True, "crop", "s"), Sample(-1.0, False, "crop", "s")]
    assert tenant_calibration.held_out_needs(one) == (
        "No held-out figures: they need at least 2 live and 2 spoof images (1 more live image "
        "and 1 more spoof image, of another subject or source)."
    )
    unnamed = [Sample(1.0, True, "crop"), Sample(-1.0, False, "crop")]
    assert "another" not in (tenant_calibration.held_out_needs(unnamed) or "")


def _shifted_channel(sources: int, seed: int) -> list[Sample]:
    """Crops of a channel whose live images sit below the shipped crop map's 0.5 (z 0.5 where
    it needs 1.25): the shipped setting rejects most of them, a calibration does not."""
    rng = np.random.default_rng(seed)
    samples = []
    for g in range(sources):
        samples += [Sample(float(z), True, "crop", f"s{g}") for z in rng.normal(0.5, 1.0, 3)]
        samples += [Sample(float(z), False, "crop", f"s{g}") for z in rng.normal(-3.0, 1.0, 3)]
    return samples


def test_the_comparison_with_now_is_paired_on_the_same_images() -> None:
    """Held out and now are measured on the same images: their own intervals overlap here
    (which was read as "cannot tell"), while the difference, drawn by source with both its
    decisions, excludes 0."""
    result = tenant_calibration.run(
        _shifted_channel(10, 0), SHIPPED, SHIPPED, 0.5, group_kind="source"
    )
    assert result.held_out is not None
    after, now = result.held_out.figures["HTER"], result.now["HTER"]
    assert after[2] > now[1]  # the two intervals overlap
    d, low, high = result.held_out.difference
    assert d == pytest.approx(after[0] - now[0])
    assert low <= d <= high < 0
    said = result.sentences[-1]
    assert f"is lower than now ({now[0]:.1%})" in said and "excludes 0" in said
    assert result.figures()["held_out"]["difference"] == [d, low, high]  # stored with it


def test_too_few_units_give_no_interval_of_the_difference() -> None:
    result = tenant_calibration.run(
        _shifted_channel(4, 0), SHIPPED, SHIPPED, 0.5, group_kind="source"
    )
    assert result.held_out is not None and result.held_out.folds == 4
    assert np.isnan(result.held_out.difference[1:]).all()
    assert "too few units for an interval of the difference (fewer than 5)" in result.sentences[-1]
    assert "cannot tell whether it is better" in result.sentences[-1]
    assert result.figures()["held_out"]["difference"][1:] == [None, None]


def test_the_same_decisions_cannot_tell() -> None:
    """A calibration that changes no decision: the difference is 0 in every resample."""
    samples = []
    for g in range(6):
        samples += [Sample(4.0 + g / 10, True, "frame", f"s{g}")] * 2
        samples += [Sample(-4.0 - g / 10, False, "frame", f"s{g}")] * 2
    result = tenant_calibration.run(samples, SHIPPED, SHIPPED, 0.5, group_kind="source")
    assert result.held_out is not None
    assert result.held_out.difference == [0.0, 0.0, 0.0]
    assert "includes 0, so this sample cannot tell" in result.sentences[-1]
