"""Presentation attack detection metrics (ISO/IEC 30107-3 vocabulary).

APCER: share of attack presentations accepted as bona fide. BPCER: share of bona fide
presentations rejected as attacks. ACER: their mean. Scores are P(bona fide).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def apcer_bpcer(live: np.ndarray, spoof: np.ndarray, threshold: float) -> tuple[float, float]:
    apcer = float(np.mean(spoof >= threshold)) if spoof.size else float("nan")
    bpcer = float(np.mean(live < threshold)) if live.size else float("nan")
    return apcer, bpcer


def auc(live: np.ndarray, spoof: np.ndarray) -> float:
    """Probability that a bona fide sample outscores an attack (ties count half)."""
    if not live.size or not spoof.size:
        return float("nan")
    greater = (live[:, None] > spoof[None, :]).sum()
    ties = (live[:, None] == spoof[None, :]).sum()
    return float((greater + 0.5 * ties) / (live.size * spoof.size))


def eer(live: np.ndarray, spoof: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold where APCER and BPCER are closest."""
    if not live.size or not spoof.size:
        return float("nan"), float("nan")
    candidates = np.unique(np.concatenate([live, spoof, [1.0 + 1e-9]]))
    rates = np.array([apcer_bpcer(live, spoof, t) for t in candidates])
    best = int(np.argmin(np.abs(rates[:, 0] - rates[:, 1])))
    return float(rates[best].mean()), float(candidates[best])


def threshold_for_apcer(spoof: np.ndarray, target: float) -> float:
    """The lowest threshold whose APCER is at most ``target``: it accepts at most
    floor(target * N) of the N attack presentations (fewer where scores tie)."""
    if not spoof.size:
        return 0.0
    allowed = int(np.floor(target * spoof.size + 1e-9))
    if allowed >= spoof.size:
        return 0.0
    ranked = np.sort(spoof)[::-1]
    return float(np.nextafter(ranked[allowed], np.inf))


def bpcer_at_apcer(live: np.ndarray, spoof: np.ndarray, target: float) -> tuple[float, float]:
    """(threshold, BPCER) at the operating point ``threshold_for_apcer(spoof, target)``; NaN
    for both without an attack or a bona fide presentation (there is no such point: a set
    without attacks was given BPCER 0 at every target APCER)."""
    if not live.size or not spoof.size:
        return float("nan"), float("nan")
    threshold = threshold_for_apcer(spoof, target)
    return threshold, apcer_bpcer(live, spoof, threshold)[1]


def det_points(live: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """APCER and BPCER at every distinct score (the DET curve), thresholds ascending."""
    thresholds = np.unique(np.concatenate([live, spoof, [np.inf]]))
    rates = np.array([apcer_bpcer(live, spoof, t) for t in thresholds])
    return rates[:, 0], rates[:, 1]


# --- ISO/IEC 30107-3 report: figures per PAI species, intervals over sources ---------------

TARGET_APCERS = {"BPCER20": 0.05, "BPCER10": 0.10}  # ISO's BPCER at APCER 5 % and 10 %
# Attack types a manifest gives for "we do not know which PAI species": the attacks of several
# species may hide under one, so the worst species cannot be told (only bounded from below).
UNNAMED_SPECIES = frozenset({"", "unspecified", "unknown"})
RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
# A percentile bootstrap over k sources draws from at most C(2k-1, k) distinct resamples: 35
# at k = 4, 126 at k = 5. Below 5 sources (or subjects) the interval is not given at all.
MIN_GROUPS = 5


def unnamed(species: str) -> bool:
    """Whether an attack's PAI species is not known (see UNNAMED_SPECIES)."""
    return species.strip().lower() in UNNAMED_SPECIES


@dataclass(frozen=True)
class Scored:
    """Scored presentations: P(bona fide), bona fide or attack, the PAI species of an attack
    ("" for bona fide) and the group it was drawn with (its source, or its subject)."""

    score: npt.NDArray[np.float64]
    bona_fide: npt.NDArray[np.bool_]
    species: npt.NDArray[np.str_]
    group: npt.NDArray[np.str_]

    @classmethod
    def of(cls, rows: Sequence[tuple[float, bool, str, str]]) -> Scored:
        score, bona_fide, species, group = zip(*rows, strict=True) if rows else ((), (), (), ())
        return cls(
            np.asarray(score, np.float64),
            np.asarray(bona_fide, bool),
            np.asarray(species, dtype=object).astype(str),
            np.asarray(group, dtype=object).astype(str),
        )

    def take(self, idx: np.ndarray) -> Scored:
        return Scored(self.score[idx], self.bona_fide[idx], self.species[idx], self.group[idx])

    @property
    def live(self) -> np.ndarray:
        return self.score[self.bona_fide]

    @property
    def spoof(self) -> np.ndarray:
        return self.score[~self.bona_fide]

    def groups_with(self, mask: np.ndarray) -> int:
        return int(np.unique(self.group[mask]).size)


def _rates_at(
    live: np.ndarray, spoof: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """APCER and BPCER at each threshold, as apcer_bpcer, vectorised (the bootstrap calls it
    thousands of times)."""
    ranked_spoof, ranked_live = np.sort(spoof), np.sort(live)
    apcer = (spoof.size - np.searchsorted(ranked_spoof, thresholds, "left")) / spoof.size
    bpcer = np.searchsorted(ranked_live, thresholds, "left") / live.size
    return apcer, bpcer


def fast_eer(live: np.ndarray, spoof: np.ndarray) -> tuple[float, float]:
    """eer() without its loop: the same value and threshold."""
    if not live.size or not spoof.size:
        return float("nan"), float("nan")
    candidates = np.unique(np.concatenate([live, spoof, [1.0 + 1e-9]]))
    apcer, bpcer = _rates_at(live, spoof, candidates)
    best = int(np.argmin(np.abs(apcer - bpcer)))
    return float((apcer[best] + bpcer[best]) / 2), float(candidates[best])


def decision_rates(
    scored: Scored, accepted: np.ndarray, species: Sequence[str]
) -> dict[str, float]:
    """APCER per PAI species ("APCER:print"), the worst of them, APCER over all attacks,
    BPCER and ACER (worst APCER and BPCER averaged) of decisions already taken (``accepted``:
    classified bona fide). NaN where nothing is counted."""

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return float(np.mean(of[mask])) if mask.any() else float("nan")

    attack = ~scored.bona_fide
    found = {f"APCER:{s}": share(attack & (scored.species == s), accepted) for s in species}
    present = [v for v in found.values() if not math.isnan(v)]
    worst = max(present) if present else float("nan")
    bpcer = share(scored.bona_fide, ~accepted)
    return {
        **found,
        "APCER_worst": worst,
        "APCER_all": share(attack, accepted),
        "BPCER": bpcer,
        "ACER": (worst + bpcer) / 2,
    }


def threshold_for_worst_apcer(scored: Scored, target: float) -> float:
    """The lowest threshold at which the APCER of every PAI species (ISO's APCER of the PAD
    subsystem, the worst species) is at most ``target``: each species' APCER only falls as the
    threshold rises, so it is the highest of the species' own thresholds. NaN without
    attacks. Pooled, the attacks of a rare species hide among the others: on dev the pooled
    threshold for APCER 10 % left the species "unknown" at APCER 17.6 %."""
    attack = ~scored.bona_fide
    found = [
        threshold_for_apcer(scored.score[attack & (scored.species == s)], target)
        for s in np.unique(scored.species[attack])
    ]
    return max(found) if found else float("nan")


def curve_figures(scored: Scored) -> dict[str, float]:
    """What the DET curve gives without a threshold: BPCER20 and BPCER10 (BPCER where the
    worst PAI species' APCER reaches 5 % and 10 %), AUC, EER."""
    live, spoof = scored.live, scored.spoof
    if not live.size or not spoof.size:
        nan = float("nan")
        return {**dict.fromkeys(TARGET_APCERS, nan), "AUC": nan, "EER": nan}
    points = {
        name: apcer_bpcer(live, spoof, threshold_for_worst_apcer(scored, t))[1]
        for name, t in TARGET_APCERS.items()
    }
    return {**points, "AUC": auc(live, spoof), "EER": fast_eer(live, spoof)[0]}


def _hidden_rates(scored: Scored, accepted: np.ndarray) -> list[float]:
    """APCER of each attack type that names no PAI species (UNNAMED_SPECIES)."""
    attack = ~scored.bona_fide
    return [
        float(np.mean(accepted[attack & (scored.species == s)]))
        for s in np.unique(scored.species[attack])
        if unnamed(str(s))
    ]


def worst_is_lower_bound(scored: Scored, accepted: np.ndarray) -> bool:
    """Whether the worst species' APCER of these decisions is only a lower bound: attacks
    without a species share one APCER strictly between 0 and 1, behind which a species may
    hide whose own APCER is higher (one all accepted among others all rejected), and no
    species is at 100 % already. At 0 (or 1) every attack under it is rejected (accepted),
    whatever its species: the worst is then exact."""
    species = [str(s) for s in np.unique(scored.species[~scored.bona_fide])]
    rates = decision_rates(scored, accepted, species)
    hidden = _hidden_rates(scored, accepted)
    return any(0 < r < 1 for r in hidden) and rates["APCER_worst"] < 1


def lower_bounds(scored: Scored, threshold: float) -> set[str]:
    """The figures of iso_figures that are only lower bounds because some attacks name no
    PAI species: the worst APCER and ACER (worst_is_lower_bound), and BPCER20 (BPCER10)
    where such attacks are accepted at all at its threshold (a species among them may be
    above 5 %, 10 %)."""
    if not scored.live.size or not any(unnamed(str(s)) for s in scored.species[~scored.bona_fide]):
        return set()
    found = set()
    if worst_is_lower_bound(scored, scored.score >= threshold):
        found |= {"APCER_worst", "ACER"}
    for name, target in TARGET_APCERS.items():
        at = scored.score >= threshold_for_worst_apcer(scored, target)
        if any(r > 0 for r in _hidden_rates(scored, at)):
            found.add(name)
    return found


def iso_figures(scored: Scored, threshold: float, species: Sequence[str]) -> dict[str, float]:
    accepted = scored.score >= threshold
    return {**decision_rates(scored, accepted, species), **curve_figures(scored)}


def counted(scored: Scored, name: str) -> tuple[int, int]:
    """How many presentations a figure counts, and from how many groups (for a figure of
    both classes: the fewer of its bona fide and its attack groups)."""
    attack = ~scored.bona_fide
    if name.startswith("APCER:"):
        mask = attack & (scored.species == name.split(":", 1)[1])
        return int(mask.sum()), scored.groups_with(mask)
    if name in ("APCER_worst", "APCER_all"):
        return int(attack.sum()), scored.groups_with(attack)
    if name == "BPCER":
        return int(scored.bona_fide.sum()), scored.groups_with(scored.bona_fide)
    if scored.bona_fide.all() or attack.all():  # the figure is not computed: it counts none
        # (not "12 presentations, 0 sources" beside the "-" of a bona fide-only set)
        return 0, 0
    groups = min(scored.groups_with(scored.bona_fide), scored.groups_with(attack))
    return scored.score.size, groups


def groups_by_class(scored: Scored, name: str) -> tuple[int, int] | None:
    """The attack and the bona fide groups of a figure of both classes (ACER, BPCER20, AUC,
    EER), whose count ``counted`` gives as the fewer of the two; None for a figure of one
    class, or one not computed."""
    attack = ~scored.bona_fide
    one_class = name.startswith("APCER") or name == "BPCER"
    if one_class or scored.bona_fide.all() or attack.all():
        return None
    return scored.groups_with(attack), scored.groups_with(scored.bona_fide)


Statistic = Callable[[np.ndarray], dict[str, float]]


def _members(groups: np.ndarray, within: np.ndarray | None) -> list[list[np.ndarray]]:
    """Per group, the indices of each of its subgroups (one subgroup, the whole group, when
    ``within`` is None)."""
    names, inverse = np.unique(groups, return_inverse=True)
    found = []
    for i in range(names.size):
        mine = np.flatnonzero(inverse == i)
        if within is None:
            found.append([mine])
            continue
        _, sub = np.unique(within[mine], return_inverse=True)
        found.append([mine[sub == j] for j in range(sub.max() + 1)])
    return found


def group_bootstrap(
    groups: np.ndarray,
    statistic: Statistic,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    within: np.ndarray | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals (LEVEL) of ``statistic`` (of the indices of a resample) over
    resamples that draw whole groups with replacement: the images of one source stay
    together, because they are not independent. ``within`` (the subject of each
    presentation): two stages, each drawn source's own subjects drawn with replacement in
    turn, so that the spread between sources stays in the interval (drawing subjects across
    sources made it the spread of images again when each image had its own subject: BPCER
    [0.0, 52.4] % over dev's sources, [11.1, 37.0] % over one subject per image). A resample
    where a figure is undefined (no presentation it counts) is left out for that figure; with
    fewer than half the resamples left, the figure gets no interval (NaN)."""
    members = _members(groups, within)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(members), size=(resamples, len(members)))
    collected: dict[str, list[float]] = {}
    for draw in draws:
        parts = [members[i] for i in draw]
        if within is not None:  # second stage: as many subjects, drawn from the source's own
            parts = [[p[j] for j in rng.integers(0, len(p), len(p))] for p in parts]
        idx = np.concatenate([m for part in parts for m in part])
        for name, value in statistic(idx).items():
            collected.setdefault(name, []).append(value)
    tail = (1 - LEVEL) / 2 * 100
    intervals = {}
    for name, values in collected.items():
        found = np.asarray(values)
        found = found[np.isfinite(found)]
        if found.size < resamples / 2:
            intervals[name] = (float("nan"), float("nan"))
        else:
            low, high = np.percentile(found, [tail, 100 - tail])
            intervals[name] = (float(low), float(high))
    return intervals


def no_error_bound(value: float, groups: int) -> tuple[float, float] | None:
    """The interval of a share (a rate, or AUC) that is 0 or 1 in every resample: no group
    ever errs (or every one does), and a percentile bootstrap can only give [0, 0]. Instead
    the exact (Clopper-Pearson) one-sided LEVEL bound on the share of groups that err, none
    of ``groups`` erring: 1 - (1 - LEVEL) ** (1 / k), 45.1 % for 5 sources, 25.9 % for 10. A
    rate averaged over groups is at most the share of groups that err (a group's rate is at
    most 1), so the bound holds for the rate too. None for a value inside (0, 1)."""
    if groups < 1 or value not in (0.0, 1.0):
        return None
    edge = 1 - (1 - LEVEL) ** (1 / groups)
    return (0.0, edge) if value == 0.0 else (1 - edge, 1.0)


Fit = Callable[[Scored], float]
# Thresholds chosen on the data: at APCER 5 % and 10 % of the worst PAI species (ISO's APCER of
# the PAD subsystem), and at the EER of all attacks pooled.
FITTED: dict[str, Fit] = {
    "worst-species APCER 5 %": lambda s: threshold_for_worst_apcer(s, 0.05),
    "worst-species APCER 10 %": lambda s: threshold_for_worst_apcer(s, 0.10),
    "EER": lambda s: fast_eer(s.live, s.spoof)[1],
}


def held_out_thresholds(scored: Scored, fit: Fit) -> tuple[np.ndarray, int]:
    """Leave one group out: each group's presentations get the threshold ``fit`` chose on the
    other groups (NaN where those hold no bona fide or no attack presentation); and how many
    groups could be judged that way."""
    thresholds = np.full(scored.score.size, np.nan)
    folds = 0
    for name in np.unique(scored.group):
        out = scored.group == name
        rest = scored.take(~out)
        if not rest.live.size or not rest.spoof.size:
            continue
        thresholds[out] = fit(rest)
        folds += 1
    return thresholds, folds
