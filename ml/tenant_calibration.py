"""A tenant's calibration from its own labelled captures: one map per capture kind, each with a
prior centred on the shipped map of that kind (ml.calibration.fit), a threshold rule, and
figures measured only on images each fit did not see.

Held out: the sample is cut into units (a subject or source when the sample's labels name
one, else each image), and every unit is scored by the whole procedure (maps and threshold)
fitted on the other units: leave one unit out up to ``LEAVE_ONE_OUT_UNITS`` units, else
``FOLDS``-fold over units with a fixed seed. Intervals count units, not images: a rate's Wilson
interval uses the number of units holding that class (images of one person or one video are
not independent), and AUC's score interval (Newcombe's) the same counts. Nothing here is measured
on the images it was fitted on. Plain numpy, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml import calibration, pad_metrics
from ml.profiles import CAPTURES, Platt

LEAVE_ONE_OUT_UNITS = 30  # up to this many units each is left out in turn; above, FOLDS folds
FOLDS = 5
MIN_HELD_OUT = 2  # images of each class (in 2 units or more) for held-out figures
KIND_WORDS = {"frame": ("full frame", "full frames"), "crop": ("face crop", "face crops")}
GROUP_WORDS = {
    "subject": ("subject", "subjects"),
    "source": ("source", "sources"),
    "folder": ("folder", "folders"),  # live/<folder>/... in the sample: a source or a subject
}


@dataclass(frozen=True)
class Sample:
    z: float  # fused logit
    live: bool
    capture: str  # "frame" or "crop"
    group: str = ""  # subject or source, when the sample's labels name one


@dataclass(frozen=True)
class KindFit:
    capture: str
    live: int
    spoof: int
    shipped: Platt  # the prior's centre
    before: Platt  # what the tenant applies now
    after: Platt
    fitted: bool  # False: a class is missing for this kind, ``after`` is the shipped map

    @property
    def weight(self) -> float:
        return calibration.prior_weight(self.live + self.spoof) if self.fitted else 0.0


@dataclass(frozen=True)
class Rule:
    """How the threshold is set: kept (the maps do the moving), at a target APCER on the
    calibrated sample, or where APCER = BPCER on it."""

    target_apcer: float | None = None
    equal_error: bool = False

    def threshold(self, maps: Mapping[str, Platt], samples: Sequence[Sample], kept: float) -> float:
        if self.target_apcer is None and not self.equal_error:
            return kept
        live, spoof = scores(maps, samples)
        if self.target_apcer is not None:
            return (
                calibration.choose_threshold(live, spoof, self.target_apcer) if spoof.size else kept
            )
        return calibration.equal_error_threshold(live, spoof) if live.size and spoof.size else kept

    def words(self) -> str:
        if self.target_apcer is not None:
            return f"at target APCER {self.target_apcer:.1%} on the calibrated sample"
        if self.equal_error:
            return "where APCER = BPCER on the calibrated sample"
        return KEPT_WORDS


# How a rule that keeps the threshold is said, in the stored figures too: a shadow candidate
# with this rule, promoted, keeps the threshold the tenant has then (kept_rule).
KEPT_WORDS = "kept (the maps move the scores; a target APCER would set it from the sample)"


def kept_rule(words: str) -> bool:
    """Whether a stored rule's ``words`` (figures' "threshold"/"rule") kept the threshold."""
    return words.startswith("kept")


def threshold_sentence(before: float, after: float, words: str) -> str:
    """The sentence of what the calibration does to the threshold, by its rule's ``words``."""
    if abs(after - before) < 5e-5:
        return f"Threshold {after:.4f}: {words}."
    return f"Threshold {before:.4f} → {after:.4f}, chosen {words}."


def scores(maps: Mapping[str, Platt], samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    p = [maps[s.capture].p(s.z) for s in samples]
    live = np.array([q for q, s in zip(p, samples, strict=True) if s.live], np.float64)
    spoof = np.array([q for q, s in zip(p, samples, strict=True) if not s.live], np.float64)
    return live, spoof


def fit_kinds(
    samples: Sequence[Sample], shipped: Mapping[str, Platt], before: Mapping[str, Platt]
) -> dict[str, KindFit]:
    """One map per capture kind; a kind without both classes keeps its shipped map."""
    fits = {}
    for kind in CAPTURES:
        mine = [s for s in samples if s.capture == kind]
        z_live = np.array([s.z for s in mine if s.live])
        z_spoof = np.array([s.z for s in mine if not s.live])
        fitted = bool(z_live.size and z_spoof.size)
        after = calibration.fit(z_live, z_spoof, shipped[kind]) if fitted else shipped[kind]
        fits[kind] = KindFit(
            kind, int(z_live.size), int(z_spoof.size), shipped[kind], before[kind], after, fitted
        )
    return fits


def needs(samples: Sequence[Sample]) -> str | None:
    """What is missing before anything can be fitted (None: a kind can be): each kind needs
    1 live and 1 spoof image."""
    options = []
    for kind in CAPTURES:
        live = sum(s.live for s in samples if s.capture == kind)
        spoof = sum(not s.live for s in samples if s.capture == kind)
        if live and spoof:
            return None
        wanted = [
            f"1 more {label} image of a {KIND_WORDS[kind][0]}"
            for label, have in (("live", live), ("spoof", spoof))
            if not have
        ]
        options.append(" and ".join(wanted))
    return (
        "Too few images to calibrate: a capture kind is calibrated from at least 1 live and "
        f"1 spoof image of that kind. Needs {options[0]}, or {options[1]}."
    )


def held_out_needs(samples: Sequence[Sample]) -> str | None:
    live = sum(s.live for s in samples)
    spoof = len(samples) - live
    units = len(units_of(samples))
    short = [
        f"{MIN_HELD_OUT - have} more {label} image{'s' if MIN_HELD_OUT - have > 1 else ''}"
        for label, have in (("live", live), ("spoof", spoof))
        if have < MIN_HELD_OUT
    ]
    if short:
        # One named unit: images of it alone would still leave nothing to hold out.
        other = ", of another subject or source" if units < 2 and samples[0].group else ""
        return (
            f"No held-out figures: they need at least {MIN_HELD_OUT} live and {MIN_HELD_OUT} "
            f"spoof images ({' and '.join(short)}{other})."
        )
    if units < 2:
        return (
            "No held-out figures: every image names the same subject or source; they need "
            "images of at least 1 more."
        )
    return None


def counted(samples: Sequence[Sample]) -> list[Sample]:
    """The samples the figures count: all, or those that name a subject or source when others
    name none (images without a manifest row): an image of unknown source may be of the one
    left out, and stayed in its fit; each counted as a unit of its own, narrowing the
    intervals (12 of 24 rowless: APCER [4.6 %, 69.9 %] became [8.1 %, 55.8 %], still called
    leave-one-source-out, intervals over sources)."""
    named = [s for s in samples if s.group]
    return named or list(samples)


def _unit_ids(samples: Sequence[Sample]) -> list[str]:
    """The unit of each sample: its group where the labels name one, else the image itself."""
    return [s.group or f"image {i}" for i, s in enumerate(samples)]


def units_of(samples: Sequence[Sample]) -> list[str]:
    return sorted(set(_unit_ids(samples)))


def fold_of_units(units: list[str]) -> tuple[dict[str, int], int]:
    if len(units) <= LEAVE_ONE_OUT_UNITS:
        return {u: i for i, u in enumerate(units)}, len(units)
    order = np.random.default_rng(calibration.SEED).permutation(len(units))
    return {units[j]: i % FOLDS for i, j in enumerate(order)}, FOLDS


def grouped_figures(
    live: np.ndarray,
    spoof: np.ndarray,
    live_units: int,
    spoof_units: int,
    rejected: int,
    accepted: int,
) -> dict[str, Any]:
    """Rates at the decisions taken, with intervals over units (subjects, sources or images)."""
    apcer = accepted / spoof.size if spoof.size else float("nan")
    bpcer = rejected / live.size if live.size else float("nan")
    a_ci = calibration.wilson(apcer * spoof_units, spoof_units) if spoof.size else (math.nan,) * 2
    b_ci = calibration.wilson(bpcer * live_units, live_units) if live.size else (math.nan,) * 2
    auc = pad_metrics.auc(live, spoof) if live.size and spoof.size else float("nan")
    return {
        "APCER": [apcer, *a_ci],
        "BPCER": [bpcer, *b_ci],
        # every attack pooled: HTER, not ISO's ACER (the worst PAI species'); its bounds the
        # mean of APCER's and BPCER's, which holds whenever both do: at least 90 %, not 95 %
        "HTER": [(apcer + bpcer) / 2, (a_ci[0] + b_ci[0]) / 2, (a_ci[1] + b_ci[1]) / 2],
        "AUC": [auc, *calibration.auc_interval(auc, live_units, spoof_units)],
        "bona_fide": int(live.size),
        "attacks": int(spoof.size),
        "bona_fide_units": live_units,
        "attack_units": spoof_units,
    }


def figures_at(
    p: Sequence[float],
    thresholds: Sequence[float],
    samples: Sequence[Sample],
    keep: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Figures of scores ``p`` each judged at its own threshold, over the kept samples."""
    keep = keep if keep is not None else [True] * len(samples)
    unit = _unit_ids(samples)
    chosen = [i for i, k in enumerate(keep) if k]
    live = np.array([p[i] for i in chosen if samples[i].live], np.float64)
    spoof = np.array([p[i] for i in chosen if not samples[i].live], np.float64)
    rejected = sum(p[i] < thresholds[i] for i in chosen if samples[i].live)
    accepted = sum(p[i] >= thresholds[i] for i in chosen if not samples[i].live)
    live_units = len({unit[i] for i in chosen if samples[i].live})
    spoof_units = len({unit[i] for i in chosen if not samples[i].live})
    return grouped_figures(live, spoof, live_units, spoof_units, int(rejected), int(accepted))


def by_capture(
    p: Sequence[float], thresholds: Sequence[float], samples: Sequence[Sample]
) -> dict[str, Any]:
    return {
        kind: figures_at(p, thresholds, samples, [s.capture == kind for s in samples])
        for kind in CAPTURES
        if any(s.capture == kind for s in samples)
    }


@dataclass
class HeldOut:
    method: str  # e.g. "leave-one-source-out", "5-fold by image"
    folds: int
    figures: dict[str, Any]
    by_capture: dict[str, Any]
    scores: dict[str, list[float]]  # the held-out calibrated scores, for the page's plots
    wrong: list[bool] = field(default_factory=list)  # per sample: its held-out decision errs
    # held-out HTER minus now's on the same images, with its interval over units (paired)
    difference: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "folds": self.folds,
            "figures": self.figures,
            "by_capture": self.by_capture,
            "scores": self.scores,
            "difference": self.difference,
        }


def held_out(
    samples: Sequence[Sample],
    shipped: Mapping[str, Platt],
    before: Mapping[str, Platt],
    rule: Rule,
    kept_threshold: float,
    group_kind: str = "",
) -> HeldOut | None:
    """Every unit scored by the maps and threshold fitted on the other units."""
    if held_out_needs(samples) is not None:
        return None
    units = units_of(samples)
    fold, k = fold_of_units(units)
    unit = _unit_ids(samples)
    p = [0.0] * len(samples)
    thresholds = [0.0] * len(samples)
    for i in range(k):
        train = [s for s, u in zip(samples, unit, strict=True) if fold[u] != i]
        test = [j for j, u in enumerate(unit) if fold[u] == i]
        if needs(train) is None:
            maps = {kind: f.after for kind, f in fit_kinds(train, shipped, before).items()}
            threshold = rule.threshold(maps, train, kept_threshold)
        else:  # what the procedure does with such a sample: it stores nothing
            maps, threshold = dict(before), kept_threshold
        for j in test:
            p[j], thresholds[j] = maps[samples[j].capture].p(samples[j].z), threshold
    named = any(s.group for s in samples)
    what = GROUP_WORDS.get(group_kind, ("group", "groups"))[0] if named else "image"
    method = f"leave-one-{what}-out" if k == len(units) else f"{k}-fold by {what}"
    live = [round(p[j], 6) for j, s in enumerate(samples) if s.live]
    spoof = [round(p[j], 6) for j, s in enumerate(samples) if not s.live]
    return HeldOut(
        method,
        k,
        figures_at(p, thresholds, samples),
        by_capture(p, thresholds, samples),
        {"live": live, "spoof": spoof},
        wrong_at(p, thresholds, samples),
    )


def wrong_at(
    p: Sequence[float], thresholds: Sequence[float], samples: Sequence[Sample]
) -> list[bool]:
    """Per sample, whether its decision errs: a live one rejected, a spoof accepted."""
    return [
        (p[i] < thresholds[i]) if s.live else (p[i] >= thresholds[i]) for i, s in enumerate(samples)
    ]


def _hter(wrong: np.ndarray, live: np.ndarray, idx: np.ndarray) -> float:
    rates = [wrong[idx][live[idx] == cls].mean() for cls in (True, False) if cls in live[idx]]
    return float(np.mean(rates)) if len(rates) == 2 else math.nan


def paired_difference(
    samples: Sequence[Sample], after: Sequence[bool], now: Sequence[bool]
) -> list[float]:
    """Held-out HTER minus now's, and its interval over a bootstrap of units, each drawn unit
    bringing both its decisions: the two figures are measured on the same images, so comparing
    their own intervals (overlap or not) ignores that pairing and can say "cannot tell" where
    the paired difference can. No interval (NaN) from fewer than ``pad_metrics.MIN_GROUPS``
    units."""
    live = np.array([s.live for s in samples])
    a, n = np.array(after), np.array(now)
    every = np.arange(len(samples))
    value = _hter(a, live, every) - _hter(n, live, every)
    units = np.array(_unit_ids(samples))
    if np.unique(units).size < pad_metrics.MIN_GROUPS:
        return [value, math.nan, math.nan]
    found = pad_metrics.group_bootstrap(
        units, lambda idx: {"d": _hter(a, live, idx) - _hter(n, live, idx)}
    )["d"]
    return [value, *found]


@dataclass
class Result:
    fits: dict[str, KindFit]
    threshold_before: float
    threshold: float
    rule: Rule
    now: dict[str, Any]  # the current maps and threshold on this sample: nothing fitted on it
    now_by_capture: dict[str, Any]
    held_out: HeldOut | None
    held_out_needs: str | None
    group_kind: str = ""  # "subject", "source" or "" (each image its own unit)
    sentences: list[str] = field(default_factory=list)
    unnamed: int = 0  # images fitted on but left out of the figures: they name no group
    current: str = "the shipped maps"  # the maps "now" scores with, e.g. "calibration #3's maps"
    shipped_overlap: list[str] = field(default_factory=list)  # sources the shipped maps saw
    sources: int = 0  # the sources the figures count, when the sample is grouped by source

    @property
    def maps(self) -> dict[str, Platt]:
        return {kind: f.after for kind, f in self.fits.items()}

    def params(self) -> dict[str, dict[str, float]]:
        return {kind: f.after.to_dict() for kind, f in self.fits.items()}

    def figures(self) -> dict[str, Any]:
        """What is stored with the calibration (JSON, NaN as null: a rate over an empty class):
        no in-sample figure of the fit."""
        return {k: json_safe(v) for k, v in self._figures().items()}

    def _figures(self) -> dict[str, Any]:
        return {
            "version": 2,
            "maps": {
                kind: {
                    "live": f.live,
                    "spoof": f.spoof,
                    "fitted": f.fitted,
                    "weight": f.weight,
                    "shipped": f.shipped.to_dict(),
                    "before": f.before.to_dict(),
                    "after": f.after.to_dict(),
                }
                for kind, f in self.fits.items()
            },
            "threshold": {
                "before": self.threshold_before,
                "after": self.threshold,
                "rule": self.rule.words(),
            },
            "grouped_by": self.group_kind,
            "unnamed": self.unnamed,
            "current": self.current,
            "now": self.now,
            "now_by_capture": self.now_by_capture,
            "held_out": self.held_out.to_dict() if self.held_out else None,
            "held_out_needs": self.held_out_needs,
            "sentences": self.sentences,
        }


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def run(
    samples: Sequence[Sample],
    shipped: Mapping[str, Platt],
    before: Mapping[str, Platt],
    threshold_before: float,
    rule: Rule = Rule(),
    group_kind: str = "",
    current: str = "the shipped maps",
    shipped_sources: Collection[str] = (),
) -> Result:
    """The calibration of ``samples``; ``needs(samples)`` must be None. ``current``: what
    ``before`` is, in words; ``shipped_sources``: the sources the shipped maps were fitted on
    (their provenance), which a sample grouped by source may share."""
    fits = fit_kinds(samples, shipped, before)
    maps = {kind: f.after for kind, f in fits.items()}
    threshold = rule.threshold(maps, samples, threshold_before)
    measured = counted(samples)
    p_now = [before[s.capture].p(s.z) for s in measured]
    at_now = [threshold_before] * len(measured)
    found = held_out(measured, shipped, before, rule, threshold_before, group_kind)
    if found is not None:
        found.difference = paired_difference(
            measured, found.wrong, wrong_at(p_now, at_now, measured)
        )
    result = Result(
        fits,
        threshold_before,
        threshold,
        rule,
        figures_at(p_now, at_now, measured),
        by_capture(p_now, at_now, measured),
        found,
        held_out_needs(measured),
        group_kind,
        unnamed=len(samples) - len(measured),
        current=current,
    )
    if group_kind == "source":
        sources = {s.group for s in measured}
        result.sources = len(sources)
        result.shipped_overlap = sorted(sources & set(shipped_sources))
    result.sentences = sentences(result)
    return result


def _score_words(before: Platt, after: Platt, words: str) -> str:
    """What the map change means for a capture that scored 0.50 before (a > 0, so it has a
    fused logit)."""
    z = -before.b / before.a
    moved = after.p(z)
    if abs(moved - 0.5) < 0.005:
        return f"a {words} that scored 0.50 still scores {moved:.2f}"
    higher = "higher" if moved > 0.5 else "lower"
    return f"a {words} that scored 0.50 now scores {moved:.2f} ({higher})"


def same_map(one: Platt, other: Platt) -> bool:
    return abs(one.a - other.a) < 5e-4 and abs(one.b - other.b) < 5e-4  # as printed, 3 decimals


def _unfitted_words(f: KindFit, one: str, many: str) -> str:
    """A kind the sample cannot calibrate takes the shipped map: kept when the tenant already
    has it; when the tenant has a calibrated map of that kind, "kept" would be false
    (recalibrating on face crops alone sends its full frames back to the shipped map)."""
    if same_map(f.before, f.after):
        return f"the shipped map is kept (slope {f.after.a:.3f}, offset {f.after.b:.3f})"
    return (
        f"{many} go back to the shipped map: slope {f.before.a:.3f} → {f.after.a:.3f}, offset "
        f"{f.before.b:.3f} → {f.after.b:.3f}; {_score_words(f.before, f.after, one)}"
    )


def kind_sentence(f: KindFit) -> str:
    """What the calibration changes for one capture kind, from ``f.before`` (what the tenant
    applies) to ``f.after``."""
    one, many = KIND_WORDS[f.capture]
    counts = f"{f.live} live and {f.spoof} spoof"
    if not f.fitted:
        missing = "live" if not f.live else "spoof"
        why = (
            f"no {many} in the sample"
            if not f.live + f.spoof
            else f"{counts} {many}: calibrating them needs at least 1 more {missing} image "
            f"of a {one}"
        )
        return f"{many.capitalize()}: {why}; {_unfitted_words(f, one, many)}."
    return (
        f"{many.capitalize()} ({counts}): slope {f.before.a:.3f} → {f.after.a:.3f}, offset "
        f"{f.before.b:.3f} → {f.after.b:.3f}; {_score_words(f.before, f.after, one)}. "
        f"The sample's {f.live + f.spoof} images weigh {f.weight:.0%} against the shipped "
        f"map (which weighs as {calibration.PRIOR_IMAGES:.0f} images)."
    )


def sentences(result: Result) -> list[str]:
    """What the calibration changed, per kind (first, one each, in ``result.fits``' order)
    and for the threshold; every one true."""
    said = [kind_sentence(f) for f in result.fits.values()]
    said.append(threshold_sentence(result.threshold_before, result.threshold, result.rule.words()))
    if result.unnamed:
        said.append(unnamed_sentence(result))
    said += in_sample_sentences(result)
    if result.held_out is None:
        said.append(result.held_out_needs or "No held-out figures.")
    else:
        said.append(held_out_sentence(result))
    return said


def in_sample_sentences(result: Result) -> list[str]:
    """Where the figures are not independent of maps fitted before: "now" scores with the
    current maps as they are, which a tenant's calibration fitted on its own sample (this one
    may share images with it: a calibration keeps no record of its images); the shipped maps,
    every fit's prior, were fitted on the sources their provenance lists."""
    said = []
    if result.current != "the shipped maps":
        said.append(
            f"The figures now use {result.current} as they are, not refitted on this sample: "
            "on any image of this sample that calibration was fitted on, they are in-sample."
        )
    if result.shipped_overlap:
        shared, named = result.shipped_overlap, ", ".join(result.shipped_overlap[:3])
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        said.append(
            f"The shipped maps, the prior of every fit, were fitted on {len(shared)} of this "
            f"sample's {result.sources} source{'s' if result.sources != 1 else ''} "
            f"({named}{more}): on those, every figure here, held out too, is in-sample for "
            "the prior."
        )
    return said


def unnamed_sentence(result: Result) -> str:
    one = GROUP_WORDS.get(result.group_kind, ("group", "groups"))[0]
    total = sum(f.live + f.spoof for f in result.fits.values())
    named = total - result.unnamed
    return (
        f"{result.unnamed} of the {total} images name no {one} (no manifest row, or an empty "
        f"cell): the maps are fitted on all {total}, the figures count only the {named} that "
        f"name one (an image of unknown {one} may be of the {one} left out)."
    )


def _units_words(result: Result) -> str:
    if result.group_kind:
        return GROUP_WORDS[result.group_kind][1]
    return (
        "images (the sample names no subject or source: intervals may be too narrow when "
        "several images show one person)"
    )


# HTER's interval is no 95 % interval of its own: the mean of APCER's and BPCER's bounds, it
# holds whenever both do (at least 90 %, by the union of their 5 % misses).
HTER_WORDS = (
    "HTER = (APCER + BPCER) / 2, every attack pooled, not ISO's ACER; its interval the mean "
    "of theirs' bounds, at least 90 %"
)


def held_out_sentence(result: Result) -> str:
    """How the held-out HTER compares with the current setting's on the same images, told as
    the paired difference's interval allows."""
    found = result.held_out
    assert found is not None
    after, now = found.figures["HTER"], result.now["HTER"]
    units = _units_words(result)
    if any(math.isnan(v) for v in (after[0], now[0])):
        compared = "HTER cannot be compared (a class is missing)"
    else:
        compared = _compared(after[0], now[0], found.difference)
    return f"Figures held out ({found.method}; intervals over {units}): {compared}."


def _compared(after: float, now: float, difference: Sequence[float]) -> str:
    d, low, high = difference
    if math.isnan(low) or math.isnan(high):
        return (
            f"held-out HTER {after:.1%} against {now:.1%} now: too few units for an interval "
            f"of the difference (fewer than {pad_metrics.MIN_GROUPS}), so this sample cannot "
            "tell whether it is better"
        )
    paired = f"the difference {d:+.1%} [{low:+.1%}, {high:+.1%}], paired on the same images"
    if high < 0:
        return f"held-out HTER {after:.1%} is lower than now ({now:.1%}): {paired}, excludes 0"
    if low > 0:
        return f"held-out HTER {after:.1%} is higher than now ({now:.1%}): {paired}, excludes 0"
    return (
        f"held-out HTER {after:.1%} against {now:.1%} now: {paired}, includes 0, so this "
        "sample cannot tell whether it is better"
    )


def _cell(name: str, cell: list[float]) -> str:
    value, low, high = cell
    if math.isnan(value):
        return f"{name} -"
    if math.isnan(low) or math.isnan(high):
        return f"{name} {value:.1%}" if name != "AUC" else f"{name} {value:.3f}"
    if name == "AUC":
        return f"{name} {value:.3f} [{low:.3f}, {high:.3f}]"
    return f"{name} {value:.1%} [{low:.1%}, {high:.1%}]"


def figures_line(label: str, figs: Mapping[str, Any]) -> str:
    cells = "  ".join(_cell(n, figs[n]) for n in ("APCER", "BPCER", "HTER", "AUC"))
    return f"  {label:<52} {cells}"


def now_label(current: str, threshold: float | None, when: str = "now") -> str:
    """ "now: the shipped maps, not refitted (threshold 0.5000)": the maps in use, applied as
    they are; "not fitted" was false where they were a calibration fitted on these images.
    ``when``: "when fitted" for a promoted candidate's, taken before what it replaced."""
    at = f" (threshold {threshold:.4f})" if threshold is not None else ""
    return f"{when}: {current}, not refitted{at}"


def report(result: Result) -> str:
    """The command's text: what changed, then the figures (now, and held out)."""
    lines = ["What the calibration changes:", *(f"  {s}" for s in result.sentences)]
    over = ""
    if result.unnamed:
        one = GROUP_WORDS.get(result.group_kind, ("group", "groups"))[0]
        over = f", over the {result.now['bona_fide'] + result.now['attacks']} images naming a {one}"
    lines.append(
        "Figures with 95 % intervals (rates: Wilson over units; AUC: Newcombe's score "
        f"interval; {HTER_WORDS}){over}:"
    )
    lines.append(figures_line(now_label(result.current, result.threshold_before), result.now))
    for kind, figs in result.now_by_capture.items():
        lines.append(figures_line(f"  now, {KIND_WORDS[kind][1]}", figs))
    if result.held_out is not None:
        lines.append(
            figures_line(
                f"calibrated, held out ({result.held_out.method})", result.held_out.figures
            )
        )
        for kind, figs in result.held_out.by_capture.items():
            lines.append(figures_line(f"  held out, {KIND_WORDS[kind][1]}", figs))
    else:
        lines.append(f"  {result.held_out_needs}")
    return "\n".join(lines)
