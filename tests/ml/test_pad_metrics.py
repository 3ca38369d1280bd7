"""PAD metrics on hand-checkable score sets."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from ml import pad_metrics, profiles


def test_apcer_bpcer_count_each_side() -> None:
    live = np.array([0.9, 0.8, 0.4, 0.7])
    spoof = np.array([0.1, 0.6, 0.2, 0.3, 0.05])
    assert pad_metrics.apcer_bpcer(live, spoof, 0.5) == pytest.approx((1 / 5, 1 / 4))


def test_auc_and_eer_of_separable_and_inverted_sets() -> None:
    live, spoof = np.array([0.9, 0.8]), np.array([0.1, 0.2])
    assert pad_metrics.auc(live, spoof) == 1.0
    assert pad_metrics.eer(live, spoof)[0] == 0.0
    assert pad_metrics.auc(spoof, live) == 0.0


def test_auc_counts_ties_as_half() -> None:
    assert pad_metrics.auc(np.array([0.5]), np.array([0.5])) == 0.5


SPOOF = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
LIVE = np.array([0.35, 0.5, 0.95, 0.8])


@pytest.mark.parametrize(
    ("target", "accepted_above"),
    [(0.0, 0.9), (0.1, 0.9), (0.2, 0.4), (0.4, 0.3), (0.99, 0.1)],
)
def test_threshold_for_a_target_apcer(target: float, accepted_above: float) -> None:
    threshold = pad_metrics.threshold_for_apcer(SPOOF, target)
    assert accepted_above < threshold < accepted_above + 1e-9
    apcer, _ = pad_metrics.apcer_bpcer(LIVE, SPOOF, threshold)
    assert apcer <= target
    assert apcer == np.floor(target * 5) / 5  # the lowest threshold: no stricter than needed


def test_threshold_for_apcer_of_one_accepts_everything() -> None:
    assert pad_metrics.threshold_for_apcer(SPOOF, 1.0) == 0.0


def test_bpcer_at_apcer() -> None:
    threshold, bpcer = pad_metrics.bpcer_at_apcer(LIVE, SPOOF, 0.2)  # 0.9 accepted, 0.4 not
    assert threshold == pytest.approx(0.4)
    assert bpcer == 0.25  # 0.35 rejected
    assert pad_metrics.bpcer_at_apcer(LIVE, SPOOF, 0.0)[1] == 0.75  # only 0.95 above 0.9


def test_det_points_run_from_accept_all_to_reject_all() -> None:
    apcer, bpcer = pad_metrics.det_points(LIVE, SPOOF)
    assert (apcer[0], bpcer[0]) == (1.0, 0.0)
    assert (apcer[-1], bpcer[-1]) == (0.0, 1.0)
    assert np.all(np.diff(apcer) <= 0) and np.all(np.diff(bpcer) >= 0)


# --- ISO/IEC 30107-3 report ---------------------------------------------------------------

from ml import evaluate  # noqa: E402
from ml.evaluate import (  # noqa: E402
    NO_SOURCE,
    NONE_JUDGED,
    Report,
    Sample,
    format_iso,
    held_out_at_target,
    iso_report,
)
from ml.pad_metrics import Scored  # noqa: E402
from ml.profiles import Platt, logit, sigmoid  # noqa: E402


def scored(
    live: list[float], attacks: dict[str, list[float]], group: str = "s"
) -> list[tuple[float, bool, str, str]]:
    rows = [(x, True, "", group) for x in live]
    return rows + [(x, False, kind, group) for kind, xs in attacks.items() for x in xs]


def test_apcer_per_species_their_worst_and_bpcer() -> None:
    data = Scored.of(
        scored(
            [0.9, 0.4, 0.8, 0.55, 0.3], {"print": [0.6, 0.2, 0.1, 0.3], "replay": [0.7, 0.8, 0.4]}
        )
    )
    figures = pad_metrics.iso_figures(data, 0.5, ["print", "replay", "mask"])
    assert figures["APCER:print"] == 1 / 4  # 0.6 accepted
    assert figures["APCER:replay"] == 2 / 3  # 0.7 and 0.8 accepted
    assert np.isnan(figures["APCER:mask"])  # no mask attack: nothing to count, not 0
    assert figures["APCER_worst"] == 2 / 3  # the worst PAI species, not the pooled rate
    assert figures["APCER_all"] == 3 / 7
    assert figures["BPCER"] == 2 / 5  # 0.4 and 0.3 rejected
    assert figures["ACER"] == pytest.approx((2 / 3 + 2 / 5) / 2)


def test_bpcer20_and_bpcer10_on_twenty_attacks() -> None:
    # 20 attacks: APCER 5 % lets 1 through (0.9), so the threshold sits just above 0.19;
    # APCER 10 % lets 2 through (0.9, 0.19): just above 0.18.
    attacks = [round(0.01 * i, 2) for i in range(1, 20)] + [0.9]
    data = Scored.of(scored([0.95, 0.85, 0.5, 0.185, 0.15], {"print": attacks}))
    figures = pad_metrics.curve_figures(data)
    assert figures["BPCER20"] == 2 / 5  # 0.185 and 0.15 rejected
    assert figures["BPCER10"] == 1 / 5  # 0.15 rejected
    one_class = pad_metrics.curve_figures(Scored.of(scored([0.9], {})))
    assert all(np.isnan(v) for v in one_class.values())


def six_sources(image_groups: bool = False) -> Scored:
    """Six sources of 5 bona fide and 5 attacks; the bona fide faces of three sources all
    score 0.3 (rejected at 0.5), of the other three 0.8: BPCER 50 %, decided by the source."""
    rows = []
    for i in range(6):
        level = 0.3 if i % 2 else 0.8
        rows += scored([level] * 5, {"print": [0.1] * 5}, group=f"src{i}")
    if image_groups:
        rows = [(*row[:3], f"image{n}") for n, row in enumerate(rows)]
    return Scored.of(rows)


def bpcer_interval(data: Scored, seed: int = 0) -> tuple[float, float]:
    def statistic(idx: np.ndarray) -> dict[str, float]:
        return pad_metrics.decision_rates(data.take(idx), data.take(idx).score >= 0.5, ["print"])

    return pad_metrics.group_bootstrap(data.group, statistic, 2000, seed)["BPCER"]


def test_bootstrap_over_sources_is_reproducible_and_wider_than_over_images() -> None:
    by_source = bpcer_interval(six_sources())
    assert bpcer_interval(six_sources()) == by_source  # same seed, same interval
    # Over sources BPCER is k/6, k ~ Binomial(6, 1/2): P(k = 0) = 1/64 < 2.5 % < P(k <= 1) =
    # 7/64, so the 95 % interval is [1/6, 5/6].
    assert by_source == pytest.approx((1 / 6, 5 / 6))
    low, high = bpcer_interval(six_sources(image_groups=True))
    # Over 30 images (as if independent) the same data give about 0.5 +- 0.18.
    assert 0.25 < low < 0.4 and 0.6 < high < 0.75
    assert high - low < 0.6 * (by_source[1] - by_source[0])  # 0.35 against 0.67


def test_leave_one_source_out_judges_each_source_by_the_others_threshold() -> None:
    # One bona fide face (0.5) and one attack per source; the fitted threshold lets no attack
    # through (APCER 0 %): just above the highest attack of the sources it is fitted on.
    rows = [
        *scored([0.5], {"print": [0.2]}, "A"),
        *scored([0.5], {"print": [0.6]}, "B"),
        *scored([0.5], {"print": [0.4]}, "C"),
    ]
    data = Scored.of(rows)

    def fit(s: Scored) -> float:
        return pad_metrics.threshold_for_apcer(s.spoof, 0.0)

    thresholds, folds = pad_metrics.held_out_thresholds(data, fit)
    assert folds == 3
    # A and C are judged above B's 0.6; B above C's 0.4.
    assert thresholds == pytest.approx([0.6, 0.6, 0.4, 0.4, 0.6, 0.6])
    held = pad_metrics.decision_rates(data, data.score >= thresholds, ["print"])
    assert (held["APCER_all"], held["BPCER"]) == pytest.approx((1 / 3, 2 / 3))
    # Fitted and measured on the same sources it would claim APCER 0 % and BPCER 100 %.
    in_sample = pad_metrics.decision_rates(data, data.score >= fit(data), ["print"])
    assert (in_sample["APCER_all"], in_sample["BPCER"]) == (0.0, 1.0)
    # A source whose complement lacks a class is not judged (NaN), not judged in sample.
    lopsided = Scored.of([*scored([0.5], {}, "A"), *scored([0.7], {"print": [0.3]}, "B")])
    thresholds, folds = pad_metrics.held_out_thresholds(lopsided, fit)
    assert folds == 1 and np.isnan(thresholds[2]) and thresholds[0] > 0.3


def test_fast_eer_is_eer() -> None:
    rng = np.random.default_rng(3)
    live, spoof = rng.random(40), rng.random(30) * 0.8
    assert pad_metrics.fast_eer(live, spoof) == pad_metrics.eer(live, spoof)


FRAME = {"minifasnet_v2": 0.9, "minifasnet_v1se": 0.9, "hyperfas": 0.9}


def sample(label: str, p: float, source: str, subject: str = "", capture: str = "crop") -> Sample:
    """A presentation the service scores ``p``: its models' scores are the inverse of the
    shipped map of its capture kind at ``p``."""
    kind = "none" if label == "live" else "print"
    shipped = profiles.shipped("fast", capture)
    scores = dict.fromkeys(FRAME, sigmoid((logit(p) - shipped.b) / shipped.a))
    return Sample(
        f"{label}/x.jpg", label, kind, [], scores, capture=capture, source=source, subject=subject
    )


def scopes(iso: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in iso["scopes"]}


def figures(scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in scope["figures"]}


def test_iso_report_of_few_sources_gives_no_interval_and_says_why() -> None:
    samples = [
        *(sample("live", 0.8, f"s{i}") for i in range(4)),
        *(sample("spoof", 0.2, f"s{i}") for i in range(3)),
        sample("live", 0.9, "only-live"),
    ]
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=200))
    found = scopes(iso)
    assert iso["unit"] == "source" and iso["species"] == ["print"]
    bpcer = figures(found["all"])["BPCER"]
    assert bpcer["value"] == 0.0 and bpcer["groups"] == 5
    # 5 sources, none rejecting a face: not [0, 0] but the exact bound over 5 sources
    assert not bpcer["note"] and bpcer["exact"]
    assert (bpcer["low"], bpcer["high"]) == pytest.approx((0.0, 1 - 0.05 ** (1 / 5)))
    apcer = figures(found["all"])["APCER_worst"]
    assert apcer["note"] == "no interval: 3 sources (needs 5)" and np.isnan(apcer["low"])
    # the one-class source: its APCER is not a figure, and says so
    alone = figures(found["only-live"])
    assert alone["APCER_worst"]["note"] == "no attack presentations"
    assert alone["AUC"]["note"] == "needs bona fide and attack presentations"
    assert found["only-live"]["fitted"] is None  # nothing to leave out within one source
    # crop-only: the frame scope is empty, and says so
    frame = found["frame"]
    assert (frame["bona_fide"], frame["attacks"]) == (0, 0)
    assert frame["fitted"]["rows"] == [] and "fewer than 2 sources" in frame["fitted"]["note"]
    assert figures(frame)["BPCER"]["note"] == "no bona fide presentations"
    rows = found["all"]["fitted"]["rows"]
    assert [r["name"] for r in rows] == [
        "worst-species APCER 5 %",
        "worst-species APCER 10 %",
        "EER",
    ]
    assert found["all"]["fitted"]["sources"] == 5
    assert all(r["folds"] == 5 for r in rows)  # each left-out source's rest has both classes


def test_iso_report_without_sources_has_no_interval_and_no_fitted_threshold() -> None:
    samples = [sample("live", 0.8, ""), sample("spoof", 0.2, ""), sample("spoof", 0.6, "")]
    iso = iso_report(Report(0.5, "fast", "x", samples))
    assert iso["unit"] == ""
    assert [s["name"] for s in iso["scopes"]] == ["all", "frame", "crop"]
    row = figures(scopes(iso)["all"])["APCER_all"]
    assert row["value"] == 0.5 and "names no sources" in row["note"]
    assert scopes(iso)["all"]["fitted"] == {
        "note": "not validated: the manifest names no sources",
        "rows": [],
    }


def test_iso_report_bootstraps_over_subjects_when_the_manifest_names_them() -> None:
    samples = [
        *(sample("live", 0.3 + 0.1 * i, "phone", subject=f"p{i}") for i in range(6)),
        *(sample("spoof", 0.1 * i, "phone", subject=f"p{i}") for i in range(6)),
    ]
    report = Report(0.5, "fast", "x", samples, resamples=300, seed=7)
    iso = iso_report(report)
    assert iso["unit"] == "source" and iso["bootstrap"]["within"] == "subject"
    phone = figures(scopes(iso)["phone"])  # one source: an interval over its subjects
    assert phone["BPCER"]["value"] == 2 / 6 and phone["BPCER"]["groups"] == 6
    assert not phone["BPCER"]["note"] and phone["BPCER"]["low"] < 2 / 6 < phone["BPCER"]["high"]
    # seeded: the same report twice (as JSON: NaN, a figure with nothing to count, is not NaN)
    assert json.dumps(iso_report(report)) == json.dumps(iso)
    assert {k: iso["bootstrap"][k] for k in ("resamples", "seed", "level", "min_groups")} == {
        "resamples": 300,
        "seed": 7,
        "level": 0.95,
        "min_groups": 5,
    }


def test_a_threshold_no_source_can_be_judged_by_is_not_shown() -> None:
    """Two sources of one class each (bona fide crops from one, attack crops from another):
    leaving either out leaves the other without a class. The thresholds were shown with "0 of
    2 sources judged" and four "-" figures noted "no attack presentations", where there were."""
    samples = [
        *(sample("live", 0.3 + 0.1 * i, "phone") for i in range(3)),
        *(sample("spoof", 0.1 * i, "kiosk") for i in range(3)),
    ]
    report = Report(0.5, "fast", "x", samples, resamples=100)
    iso = iso_report(report)
    for scope in ("all", "crop"):
        assert scopes(iso)[scope]["fitted"] == {"note": NONE_JUDGED, "rows": []}
    printed = "\n".join(format_iso(iso))
    assert "sources judged by" not in printed and "(on all sources)" not in printed
    assert held_out_at_target(report, 0.05)["folds"] == 0


def test_a_figure_of_both_classes_names_each_class_sources() -> None:
    """Attacks from 2 sources, bona fide from 3: AUC was "counted on 10 presentations, 2
    sources", the fewer class's count alone (dev: "79 presentations, 7 sources" where its bona
    fide side holds 8)."""
    samples = [
        *(sample("live", 0.6 + 0.05 * i, f"live{i % 3}") for i in range(6)),
        *(sample("spoof", 0.1 * i, f"attack{i % 2}") for i in range(4)),
    ]
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=100))
    auc, bpcer = (figures(scopes(iso)["all"])[n] for n in ("AUC", "BPCER"))
    assert (auc["groups"], auc["groups_attack"], auc["groups_bona_fide"]) == (2, 2, 3)
    assert "groups_attack" not in bpcer  # one class: its count says it
    printed = format_iso(iso)
    line = next(x for x in printed if x.lstrip().startswith("AUC"))
    assert line.endswith("10 presentations, 2 attack / 3 bona fide sources")
    assert next(x for x in printed if x.lstrip().startswith("BPCER ")).endswith(
        "6 presentations, 3 sources"
    )
    stored = {k: v for k, v in auc.items() if not k.startswith("groups_")}  # stored before
    assert evaluate.counted_on(stored, "source") == "10 presentations, 2 sources"


def test_a_one_class_report_counts_nothing_for_figures_of_both_classes() -> None:
    """A bona fide-only set: ACER, BPCER20, AUC and EER were "counted on 3 presentations, 0
    sources", and their note ran into that count; the warning asked to read intervals of
    attack figures there are none of."""
    report = Report(0.5, "fast", "x", [sample("live", 0.8, f"s{i}") for i in range(3)])
    iso = iso_report(report)
    for name in ("ACER", "BPCER20", "AUC", "EER"):
        row = figures(scopes(iso)["all"])[name]
        assert (row["presentations"], row["groups"]) == (0, 0)
    assert (figures(scopes(iso)["all"])["BPCER"]["presentations"]) == 3
    auc = next(line for line in format_iso(iso) if line.lstrip().startswith("AUC"))
    assert auc.endswith("needs bona fide and attack presentations 0 presentations, 0 sources")
    assert report.warnings() == [
        "only 3 bona fide presentations pass the gates (fewer than 30): the figures are "
        "uncertain, read the confidence intervals",
        "no attack presentation passes the gates: no figure that needs one",
    ]


def test_images_without_a_source_are_left_out_of_the_iso_report() -> None:
    """Images the manifest has no row for were one made-up source, "(no source)": counted
    among the sources, drawn as one by the bootstrap and left out as one; now they are left
    out of the report (intervals, leave one source out, its counts), and it says how many."""
    samples = [
        *(
            sample(label, p, f"s{i}")
            for i in range(3)
            for label, p in (("live", 0.8), ("spoof", 0.2))
        ),
        sample("live", 0.7, ""),
    ]
    report = Report(0.5, "fast", "x", samples, resamples=100)
    iso = iso_report(report)
    found = scopes(iso)
    assert iso["unsourced"] == 1 and NO_SOURCE not in found
    assert (found["all"]["bona_fide"], found["all"]["groups_bona_fide"]) == (3, 3)
    fitted = found["all"]["fitted"]
    assert fitted["sources"] == 3 and {r["folds"] for r in fitted["rows"]} == {3}
    held = held_out_at_target(report, 0.05)
    assert (held["folds"], held["sources"]) == (3, 3)
    assert "1 presentation without a source (no manifest row) left out" in format_iso(iso)[1]


# --- what an ISO/IEC 30107-3 lab's audit found -------------------------------------------


def test_subjects_are_drawn_within_the_drawn_sources() -> None:
    """One subject per image, six sources deciding BPCER (50 %): drawn across sources, the
    subjects were the images again, about [32 %, 68 %]; drawn within each drawn source, the
    interval keeps the sources' spread, at least [1/6, 5/6] as over sources alone."""
    data = six_sources()
    subjects = np.asarray([f"{g}/{n}" for n, g in enumerate(data.group)])

    def statistic(idx: np.ndarray) -> dict[str, float]:
        part = data.take(idx)
        return pad_metrics.decision_rates(part, part.score >= 0.5, ["print"])

    two_stage = pad_metrics.group_bootstrap(data.group, statistic, 2000, 0, subjects)["BPCER"]
    assert two_stage[0] <= 1 / 6 and two_stage[1] >= 5 / 6  # never narrower than over sources
    samples = [
        sample(label, p, f"src{i}", subject=f"p{i}-{n}")
        for i in range(6)
        for n, (label, p) in enumerate([("live", 0.3 if i % 2 else 0.8)] * 5 + [("spoof", 0.1)])
    ]
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=2000))
    bpcer = figures(scopes(iso)["all"])["BPCER"]
    assert bpcer["groups"] == 6  # the 5-source minimum counts sources, not 30 subjects
    assert bpcer["low"] <= 1 / 6 and bpcer["high"] >= 5 / 6  # as wide as over sources
    assert "two-stage" in format_iso(iso)[1]


@pytest.mark.parametrize(
    ("value", "groups", "expected"),
    [(0.0, 5, (0.0, 0.4507)), (0.0, 10, (0.0, 0.2589)), (1.0, 5, (0.5493, 1.0)), (0.3, 5, None)],
)
def test_no_error_bound(value: float, groups: int, expected: tuple[float, float] | None) -> None:
    found = pad_metrics.no_error_bound(value, groups)
    assert found == (pytest.approx(expected, abs=1e-4) if expected else None)


def test_a_rate_no_source_errs_at_is_not_given_a_zero_width_interval() -> None:
    """Five sources whose attacks are all rejected: APCER 0 % was "[0.0 %, 0.0 %]"."""
    samples = [
        sample(label, p, f"s{i}") for i in range(5) for label, p in (("live", 0.8), ("spoof", 0.1))
    ]
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=200))
    rows = figures(scopes(iso)["all"])
    for name in ("APCER_all", "APCER_worst", "BPCER", "ACER", "EER"):
        assert rows[name]["exact"] and rows[name]["high"] == pytest.approx(0.4507, abs=1e-4)
    assert rows["AUC"]["low"] == pytest.approx(0.5493, abs=1e-4) and rows["AUC"]["high"] == 1
    printed = "\n".join(format_iso(iso))
    assert "[0.0 %, 45.1 %] exact bound" in printed and "[0.0 %, 0.0 %]" not in printed


def test_the_worst_species_is_a_lower_bound_when_attacks_name_none() -> None:
    """Attacks of an unknown species share one APCER (2 of 4): a species hidden among them may
    be worse. The report gave it as the worst species, unmarked."""
    rows = [
        *scored([0.9, 0.8, 0.7, 0.2], {"unknown": [0.6, 0.7, 0.1, 0.2], "print": [0.1]}, "a"),
        *scored([0.9], {"replay": [0.1]}, "b"),
    ]
    data = Scored.of(rows)
    assert pad_metrics.lower_bounds(data, 0.5) >= {"APCER_worst", "ACER"}
    named = Scored.of([(s, b, "print" if k == "unknown" else k, g) for s, b, k, g in rows])
    assert pad_metrics.lower_bounds(named, 0.5) == set()
    # every unknown attack rejected: whatever species they are, each is at 0 %: exact
    assert "APCER_worst" not in pad_metrics.lower_bounds(data, 0.75)
    samples = [sample("live", 0.8, "s"), sample("spoof", 0.6, "s"), sample("spoof", 0.3, "s")]
    for s in samples[1:]:
        s.species = "unknown"
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=100))
    worst = figures(scopes(iso)["all"])["APCER_worst"]
    assert worst["bound"] == "lower"
    printed = "\n".join(format_iso(iso))
    assert re.search(r"APCER, worst PAI species\s+≥ 50.0 %", printed)
    assert "2 of 2 attacks name no PAI species (unknown: 2)" in printed


def test_bpcer20_holds_the_worst_species_at_five_percent() -> None:
    """40 attacks, 20 print (all 0.1) and 20 replay whose two highest (0.9, 0.8) pass the
    pooled threshold for APCER 5 % (2 of 40): replay then at APCER 10 %. ISO's BPCER20 holds
    every species at 5 %: only 0.9 passes, and the bona fide faces at 0.7 and 0.6 are
    rejected (pooled: none)."""
    replay = [0.9, 0.8, *([0.2] * 18)]
    data = Scored.of(scored([0.95, 0.85, 0.7, 0.6], {"print": [0.1] * 20, "replay": replay}))
    assert pad_metrics.bpcer_at_apcer(data.live, data.spoof, 0.05)[1] == 0.0  # pooled
    threshold = pad_metrics.threshold_for_worst_apcer(data, 0.05)
    assert 0.8 < threshold < 0.85
    assert pad_metrics.curve_figures(data)["BPCER20"] == 0.5


def test_bpcer_at_a_target_apcer_without_attacks_is_none_not_zero() -> None:
    assert all(np.isnan(v) for v in pad_metrics.bpcer_at_apcer(LIVE, np.array([]), 0.05))
    report = Report(0.5, "fast", "x", [sample("live", 0.8, "s"), sample("live", 0.3, "s")])
    assert all(np.isnan(p["BPCER"]) for p in report.operating_points().values())


def test_few_attacks_make_bpcer20_bpcer_at_apcer_zero_and_the_report_says_so() -> None:
    samples = [
        sample(label, p, f"s{i}") for i in range(5) for label, p in (("live", 0.8), ("spoof", 0.3))
    ]
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=100))
    remarks = scopes(iso)["all"]["remarks"]
    assert (
        "BPCER20 is BPCER at APCER 0 % for the attacks of print (5): fewer than 20" in (remarks[0])
    )
    assert any(r.startswith("BPCER10 is BPCER at APCER 0 %") for r in remarks)


def test_the_pooled_mean_is_not_called_acer() -> None:
    samples = [sample("live", 0.8, "s"), sample("spoof", 0.6, "s")]
    report = Report(0.5, "fast", "x", samples)
    assert set(report.figures()) == {"APCER", "BPCER", "HTER", "AUC", "EER"}
    assert "HTER = (APCER all attacks + BPCER) / 2" in report.format()


def test_the_text_gives_per_source_intervals_over_subjects() -> None:
    samples = [
        *(sample("live", 0.3 + 0.1 * i, "phone", subject=f"p{i}") for i in range(6)),
        *(sample("spoof", 0.1 * i, "phone", subject=f"p{i}") for i in range(6)),
    ]
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=300))
    low, high = (figures(scopes(iso)["phone"])["BPCER"][k] * 100 for k in ("low", "high"))
    row = next(line for line in format_iso(iso) if line.lstrip("* ").startswith("phone"))
    assert f"33.3 % [{low:.1f}, {high:.1f}]" in row


def test_sources_the_shipped_maps_were_fitted_on_are_marked_in_sample() -> None:
    fitted = sorted(profiles.fitting_sources())
    assert "WOLF-huo/face_liveness" in fitted
    samples = [
        sample(label, p, source)
        for source in (fitted[0], "a-new-channel")
        for label, p in (("live", 0.8), ("spoof", 0.3))
    ]
    iso = iso_report(Report(0.5, "fast", "x", samples, resamples=100))
    found = scopes(iso)
    assert (found[fitted[0]]["in_sample"], found["a-new-channel"]["in_sample"]) == (1, 0)
    assert (found["all"]["in_sample"], found["all"]["sources"]) == (1, 2)
    printed = format_iso(iso)
    assert "in-sample for the shipped maps: 1 of 2 sources (marked *)" in printed[2]
    assert any(line.startswith(f"  * {fitted[0]}") for line in printed)
    # a tenant's calibration scored it: not the shipped maps' sample
    tenant = Report(
        0.5, "fast", "x", samples, calibration=dict.fromkeys(profiles.CAPTURES, Platt())
    )
    assert (
        iso_report(tenant)["in_sample_of"] == ""
        and not scopes(iso_report(tenant))["all"]["in_sample"]
    )
