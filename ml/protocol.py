"""Tenant-by-source protocol: each capture source of a labelled folder plays a tenant.

Within each source the images of each class are sorted by name and dealt alternately into
two halves. The calibration (ml.calibration: map and equal-error threshold) is fitted on one
half and scores the other, then the halves swap, so every image is scored once, always by a
calibration that never saw it. Pooled over all sources, and source by source with intervals,
this is compared with the same images scored as a new tenant's are (the shipped map of each
capture kind at the default threshold). A source with no image of a class in a half stays
uncalibrated there.

The halves are small (3 + 3 on the dev set), so the prior keeps the map near the identity and
the threshold does most of the work. Beside that one-map protocol, ``calibrate``'s own procedure
(ml.tenant_calibration: a map per capture kind centred on the shipped maps; the threshold kept,
or at APCER = BPCER) is run on the same halves. Figures carry 95 % intervals and are what a
tenant calibrated on a few of its own captures can expect, not a tuning target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml import calibration, pad_metrics, profiles, tenant_calibration
from ml.evaluate import Report, Sample, amount
from ml.profiles import Platt

LABELS = ("live", "spoof")
KEPT = "calibrate, threshold kept"  # the rule a tenant runs by default; compared per source
RULES = {
    KEPT: tenant_calibration.Rule(),
    "calibrate --equal-error-rate": tenant_calibration.Rule(equal_error=True),
}


@dataclass
class Outcome:
    uncalibrated: dict[str, Any]
    calibrated: dict[str, Any]
    per_source: dict[str, dict[str, Any]] = field(default_factory=dict)
    procedure: dict[str, dict[str, Any]] = field(default_factory=dict)  # RULES -> figures
    fitted_on: list[str] = field(default_factory=list)  # sources the shipped maps saw


@dataclass
class Decision:
    """One held-out image: its source, class, and whether it was judged wrongly."""

    source: str
    live: bool
    wrong: bool


def source_figures(decisions: list[Decision]) -> dict[str, Any]:
    """APCER, BPCER and HTER with Wilson intervals of one source's decisions."""
    live = [d for d in decisions if d.live]
    spoof = [d for d in decisions if not d.live]
    return calibration.figures_of_decisions(
        sum(d.wrong for d in live), len(live), sum(d.wrong for d in spoof), len(spoof), math.nan
    )


def procedure(
    report: Report, halves_of: list[tuple[list[Sample], list[Sample]]], default_threshold: float
) -> tuple[dict[str, dict[str, Any]], list[Decision]]:
    """``calibrate``'s procedure fitted on each half and scored on the other, per rule; and the
    decisions of the default rule (KEPT), for the per-source comparison."""
    shipped = profiles.shipped_maps(report.profile)

    def mapped(samples: list[Sample]) -> list[tenant_calibration.Sample]:
        return [
            tenant_calibration.Sample(report.logit(s), s.label == "live", s.capture or "frame")
            for s in samples
        ]

    found = {}
    kept: list[Decision] = []
    for name, rule in RULES.items():
        p: list[float] = []
        at: list[float] = []
        scored: list[tenant_calibration.Sample] = []
        for fit_on, score_on in halves_of:
            train, test = mapped(fit_on), mapped(score_on)
            maps, threshold = dict(shipped), default_threshold
            if tenant_calibration.needs(train) is None:
                fits = tenant_calibration.fit_kinds(train, shipped, shipped)
                maps = {kind: f.after for kind, f in fits.items()}
                threshold = rule.threshold(maps, train, default_threshold)
            scores = [maps[s.capture].p(s.z) for s in test]
            p += scores
            at += [threshold] * len(test)
            scored += test
            if name == KEPT:
                kept += [
                    Decision(sample.source, s.live, (score >= threshold) != s.live)
                    for sample, s, score in zip(score_on, test, scores, strict=True)
                ]
        found[name] = tenant_calibration.figures_at(p, at, scored)
    return found, kept


def halves(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    first: list[Sample] = []
    second: list[Sample] = []
    for label in ("live", "spoof"):
        ranked = sorted((s for s in samples if s.label == label), key=lambda s: s.file)
        first += ranked[0::2]
        second += ranked[1::2]
    return first, second


def fitted(report: Report, fit_on: list[Sample], default_threshold: float) -> tuple[Platt, float]:
    """The one-map calibration of a half: its map and equal-error threshold; the identity at
    ``default_threshold`` when the half lacks a class."""
    z = {lab: np.array([report.logit(s) for s in fit_on if s.label == lab]) for lab in LABELS}
    if not (z["live"].size and z["spoof"].size):
        return calibration.IDENTITY, default_threshold
    platt = calibration.fit(z["live"], z["spoof"])
    return platt, calibration.choose_threshold(platt(z["live"]), platt(z["spoof"]), None)


@dataclass
class HeldOut:
    """Every judged sample scored once by its source's map fitted on the other half, and as a
    new tenant's are (the shipped maps at the default threshold)."""

    default_threshold: float
    shipped: dict[str, list[float]] = field(default_factory=lambda: {lab: [] for lab in LABELS})
    calibrated: dict[str, list[float]] = field(default_factory=lambda: {lab: [] for lab in LABELS})
    rejected: int = 0
    accepted: int = 0
    before: list[Decision] = field(default_factory=list)

    def score(
        self,
        report: Report,
        source: str,
        samples: list[Sample],
        platt: Platt,
        threshold: float,
    ) -> None:
        for s in samples:
            p, shipped = platt.p(report.logit(s)), report.p_live(s)
            self.shipped[s.label].append(shipped)
            self.calibrated[s.label].append(p)
            bona_fide = s.label == "live"
            wrong_before = (shipped >= self.default_threshold) != bona_fide
            self.before.append(Decision(source, bona_fide, wrong_before))
            if bona_fide:
                self.rejected += p < threshold
            else:
                self.accepted += p >= threshold

    def uncalibrated_figures(self) -> dict[str, Any]:
        live, spoof = (np.array(self.shipped[lab]) for lab in LABELS)
        return calibration.figures(live, spoof, self.default_threshold)

    def calibrated_figures(self) -> dict[str, Any]:
        live, spoof = (np.array(self.calibrated[lab]) for lab in LABELS)
        return calibration.figures_of_decisions(
            int(self.rejected),
            live.size,
            int(self.accepted),
            spoof.size,
            pad_metrics.auc(live, spoof),
        )


def run(report: Report, default_threshold: float = 0.5) -> Outcome:
    """The protocol on a report's judged samples (the gates' refusals are left out). The
    uncalibrated figures are what a new tenant gets: the shipped map of each capture kind at
    ``default_threshold``."""
    judged = [s for s in report.samples if s.passed and s.source]
    held = HeldOut(default_threshold)
    per_source: dict[str, dict[str, Any]] = {}
    pairs: list[tuple[list[Sample], list[Sample]]] = []
    for source in sorted({s.source for s in judged}):
        mine = [s for s in judged if s.source == source]
        first, second = halves(mine)
        thresholds = []
        for fit_on, score_on in ((first, second), (second, first)):
            platt, threshold = fitted(report, fit_on, default_threshold)
            thresholds.append(threshold)
            held.score(report, source, score_on, platt, threshold)
            pairs.append((fit_on, score_on))
        per_source[source] = {
            "bona_fide": sum(s.label == "live" for s in mine),
            "attacks": sum(s.label == "spoof" for s in mine),
            "thresholds": thresholds,
        }
    figures, kept = procedure(report, pairs, default_threshold)
    for source, info in per_source.items():
        info["uncalibrated"] = source_figures([d for d in held.before if d.source == source])
        info["calibrated"] = source_figures([d for d in kept if d.source == source])
    seen = profiles.fitting_sources()
    return Outcome(
        held.uncalibrated_figures(),
        held.calibrated_figures(),
        per_source,
        figures,
        sorted(seen & set(per_source)),
    )


def headline(figs: dict[str, Any]) -> tuple[str, list[float]]:
    """A source's HTER, or its one error rate when it holds one class only."""
    if not figs["attacks"]:
        return "BPCER", figs["BPCER"]
    if not figs["bona_fide"]:
        return "APCER", figs["APCER"]
    return "HTER", figs["HTER"]


def worse_beyond_interval(info: dict[str, Any]) -> bool:
    """Whether calibrating made a source's error (HTER, or its one error rate) worse than the
    upper end of the uncalibrated figure's 95 % interval."""
    after, before = headline(info["calibrated"])[1][0], headline(info["uncalibrated"])[1]
    return not math.isnan(after) and not math.isnan(before[2]) and after > before[2]


def _headline(figs: dict[str, Any]) -> str:
    name, cell = headline(figs)
    return calibration.format_cell(name, cell)


def format_outcome(outcome: Outcome, profile: str) -> str:
    lines = [
        f"tenant-by-source protocol, {profile} profile, "
        f"{amount(len(outcome.per_source), 'source')} "
        "(each calibrated on half its images, scored on the other half, then swapped):",
        calibration.format_figures("uncalibrated (shipped maps, 0.5)", outcome.uncalibrated),
        calibration.format_figures("calibrated per source", outcome.calibrated),
        *(calibration.format_figures(name, figs) for name, figs in outcome.procedure.items()),
        f"  pooled over {outcome.uncalibrated['bona_fide']} bona fide and "
        f"{amount(outcome.uncalibrated['attacks'], 'attack presentation')}",
    ]
    if outcome.fitted_on:
        lines.append(
            f"  the shipped maps were fitted on {len(outcome.fitted_on)} of these sources "
            "(ml/score_maps.json): for them the uncalibrated figures are in-sample"
        )
    lines.append(
        f"  per source: HTER (or the one error rate of a one-class source) [95 % interval] "
        f"uncalibrated -> {KEPT}; "
        "'worse' where calibrated is above the uncalibrated interval"
    )
    for source, info in outcome.per_source.items():
        th = ", ".join(f"{t:.3f}" for t in info["thresholds"])
        flag = "  worse" if worse_beyond_interval(info) else ""
        lines.append(
            f"    {source[:40]:<40} {info['bona_fide']:>3} bf / {info['attacks']:>3} at  "
            f"{_headline(info['uncalibrated'])} -> {_headline(info['calibrated'])}  "
            f"thresholds {th}{flag}"
        )
    worse = sum(worse_beyond_interval(info) for info in outcome.per_source.values())
    lines.append(f"  sources worse after calibration than their interval: {worse}")
    return "\n".join(lines)
