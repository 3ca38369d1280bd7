"""Per-tenant calibration: a monotone map from the fused logit to a calibrated P(live).

Platt scaling, P = sigmoid(a * z + b) with a > 0 (monotone in z), fitted by Newton's method
on the tenant's own labelled captures with a Gaussian prior centred on the identity (a = 1,
b = 0: the uncalibrated score), so a small sample moves the map only a little. Classes are
weighed equally (the sample's mix of live and attack images says nothing about the traffic).
The threshold is then chosen on the calibrated scores: at a target APCER, or where APCER and
BPCER are equal. Confidence intervals: Wilson for APCER and BPCER (ACER: the mean of their
bounds, conservative), Hanley-McNeil for AUC; out-of-sample figures from stratified k-fold
cross-validation with a fixed seed. Plain numpy, no Django.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ml import pad_metrics

# Precision of the prior on (a, b): on the slope like a few well-spread images, so with a
# handful of images the slope stays near 1 and with 30+ the data decide; on the offset much
# weaker (sd 1.4 in logit units), because a shift is what a capture channel needs most
# (NOTICE.md: mean P(live) of live faces ranges from 0.03 to 0.99 between sources).
PRIOR_WEIGHT = (4.0, 0.5)
MIN_SLOPE = 0.05  # a > 0: the map stays increasing even for a source whose scores are inverted
Z = 1.959964  # 95 %
MIN_PER_CLASS = 4  # `calibrate` refuses below this many images of either class
WARN_PER_CLASS = 30  # and warns below this many
FOLDS = 5
SEED = 0


@dataclass(frozen=True)
class Platt:
    a: float = 1.0
    b: float = 0.0

    def __call__(self, z: np.ndarray | float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * np.asarray(z, np.float64) + self.b)))

    def p(self, z: float) -> float:
        """Calibrated P(live) of one fused logit (the service's hot path: no numpy)."""
        t = self.a * z + self.b
        if t >= 0:
            return 1.0 / (1.0 + math.exp(-t))
        e = math.exp(t)
        return e / (1.0 + e)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


IDENTITY = Platt()


def fit(
    z_live: np.ndarray, z_spoof: np.ndarray, prior: tuple[float, float] = PRIOR_WEIGHT
) -> Platt:
    """MAP estimate of (a, b) under the prior; ``a`` is kept at or above MIN_SLOPE."""
    z = np.concatenate([z_live, z_spoof]).astype(np.float64)
    y = np.concatenate([np.ones(len(z_live)), np.zeros(len(z_spoof))])
    if not len(z_live) or not len(z_spoof):
        return IDENTITY
    n = len(z)
    w = np.where(y == 1, n / (2 * len(z_live)), n / (2 * len(z_spoof)))
    precision = np.asarray(prior, np.float64)
    theta = np.array([1.0, 0.0])
    centre = theta.copy()
    free = np.array([True, True])
    x = np.stack([z, np.ones(n)], axis=1)

    def objective(t: np.ndarray) -> float:
        s = x @ t
        loglik = np.sum(w * (y * s - np.logaddexp(0.0, s)))
        return float(loglik - np.sum(precision / 2 * (t - centre) ** 2))

    for _ in range(2):  # second pass only when the slope had to be pinned at MIN_SLOPE
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(x @ theta)))
            grad = x.T @ (w * (y - p)) - precision * (theta - centre)
            hess = -(x.T * (w * p * (1 - p))) @ x - np.diag(precision)
            idx = np.flatnonzero(free)
            step = np.zeros(2)
            step[idx] = np.linalg.solve(hess[np.ix_(idx, idx)], grad[idx])
            current, scale = objective(theta), 1.0
            while scale > 1e-6 and objective(theta - scale * step) < current:
                scale /= 2  # damped Newton: never step downhill
            theta = theta - scale * step
            if np.max(np.abs(scale * step)) < 1e-10:
                break
        if theta[0] >= MIN_SLOPE:
            break
        theta[0], free = MIN_SLOPE, np.array([False, True])
    return Platt(float(theta[0]), float(theta[1]))


def choose_threshold(live: np.ndarray, spoof: np.ndarray, target_apcer: float | None) -> float:
    """At ``target_apcer`` (the lowest threshold meeting it) or where APCER = BPCER."""
    if target_apcer is not None:
        return float(min(pad_metrics.threshold_for_apcer(spoof, target_apcer), 1.0))
    if not live.size or not spoof.size:
        return 0.5
    return equal_error_threshold(live, spoof)


def equal_error_threshold(live: np.ndarray, spoof: np.ndarray) -> float:
    """Where APCER and BPCER are closest (then: fewest errors). Every threshold between two
    neighbouring scores gives the same decisions, so of the best such range the middle is
    taken, not its edge (on a small, separable sample the edge would sit on a live score)."""
    cuts = np.unique(np.concatenate([live, spoof]))
    rates = np.array([pad_metrics.apcer_bpcer(live, spoof, t) for t in cuts])
    key = np.round(np.abs(rates[:, 0] - rates[:, 1]), 12) * 1e3 + rates.sum(axis=1)
    best = np.flatnonzero(key == key.min())
    first, last = best[0], best[0]
    while last + 1 < cuts.size and last + 1 in best:
        last += 1
    low = cuts[first - 1] if first > 0 else 0.0
    return float(min((low + cuts[last]) / 2, 1.0))


def wilson(errors: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = errors / n
    denom = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def auc_interval(auc: float, n_live: int, n_spoof: int) -> tuple[float, float]:
    """Hanley and McNeil (1982)."""
    if math.isnan(auc) or not n_live or not n_spoof:
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_live - 1) * (q1 - auc**2) + (n_spoof - 1) * (q2 - auc**2)) / (
        n_live * n_spoof
    )
    half = Z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def figures_of_decisions(
    live_rejected: int, n_live: int, spoof_accepted: int, n_spoof: int, auc: float
) -> dict[str, Any]:
    apcer = spoof_accepted / n_spoof if n_spoof else float("nan")
    bpcer = live_rejected / n_live if n_live else float("nan")
    a_ci, b_ci = wilson(spoof_accepted, n_spoof), wilson(live_rejected, n_live)
    return {
        "APCER": [apcer, *a_ci],
        "BPCER": [bpcer, *b_ci],
        "ACER": [(apcer + bpcer) / 2, (a_ci[0] + b_ci[0]) / 2, (a_ci[1] + b_ci[1]) / 2],
        "AUC": [auc, *auc_interval(auc, n_live, n_spoof)],
        "bona_fide": n_live,
        "attacks": n_spoof,
    }


def figures(live: np.ndarray, spoof: np.ndarray, threshold: float) -> dict[str, Any]:
    """APCER, BPCER, ACER and AUC at ``threshold``, each as [value, low, high] (95 %)."""
    return figures_of_decisions(
        int(np.sum(live < threshold)),
        live.size,
        int(np.sum(spoof >= threshold)),
        spoof.size,
        pad_metrics.auc(live, spoof),
    )


def folds(n: int, k: int, seed: int = SEED) -> np.ndarray:
    """Fold index of each of ``n`` items: shuffled with a fixed seed, then dealt round."""
    order = np.random.default_rng(seed).permutation(n)
    assigned = np.empty(n, dtype=int)
    assigned[order] = np.arange(n) % k
    return assigned


def cross_validate(
    z_live: np.ndarray,
    z_spoof: np.ndarray,
    target_apcer: float | None,
    k: int = FOLDS,
    prior: tuple[float, float] = PRIOR_WEIGHT,
) -> dict[str, Any]:
    """Stratified k-fold: each fold scored by the calibration and threshold fitted on the
    others. AUC is that of the pooled out-of-fold calibrated scores."""
    k = max(2, min(k, z_live.size, z_spoof.size))
    fl, fs = folds(z_live.size, k), folds(z_spoof.size, k, SEED + 1)
    out_live, out_spoof = np.empty(z_live.size), np.empty(z_spoof.size)
    rejected = accepted = 0
    for i in range(k):
        platt = fit(z_live[fl != i], z_spoof[fs != i], prior)
        threshold = choose_threshold(platt(z_live[fl != i]), platt(z_spoof[fs != i]), target_apcer)
        out_live[fl == i], out_spoof[fs == i] = platt(z_live[fl == i]), platt(z_spoof[fs == i])
        rejected += int(np.sum(out_live[fl == i] < threshold))
        accepted += int(np.sum(out_spoof[fs == i] >= threshold))
    result = figures_of_decisions(
        rejected, z_live.size, accepted, z_spoof.size, pad_metrics.auc(out_live, out_spoof)
    )
    result["folds"] = k
    return result


@dataclass
class Fitted:
    platt: Platt
    threshold: float
    before: dict[str, Any]  # the tenant's scores as they were, at its previous threshold
    after: dict[str, Any]  # calibrated scores at the new threshold, on the sample
    cross_validated: dict[str, Any] | None  # None below MIN_PER_CLASS images of a class

    def figures(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "cross_validated": self.cross_validated,
        }


def calibrate(
    z_live: np.ndarray,
    z_spoof: np.ndarray,
    previous_threshold: float,
    target_apcer: float | None = None,
    prior: tuple[float, float] = PRIOR_WEIGHT,
    current: Platt = IDENTITY,
) -> Fitted:
    """Fit the map and the threshold on the whole sample, with the figures around it.
    ``current`` and ``previous_threshold``: how the tenant scores today ("before")."""
    z_live, z_spoof = np.asarray(z_live, np.float64), np.asarray(z_spoof, np.float64)
    platt = fit(z_live, z_spoof, prior)
    live, spoof = platt(z_live), platt(z_spoof)
    threshold = choose_threshold(live, spoof, target_apcer)
    enough = min(z_live.size, z_spoof.size) >= 2
    return Fitted(
        platt,
        threshold,
        figures(current(z_live), current(z_spoof), previous_threshold),
        figures(live, spoof, threshold),
        cross_validate(z_live, z_spoof, target_apcer, prior=prior) if enough else None,
    )


def _fmt(name: str, cell: list[float]) -> str:
    value, low, high = cell
    return f"{name} {value:.3f} [{low:.3f}, {high:.3f}]"


def format_figures(label: str, figs: dict[str, Any] | None) -> str:
    if figs is None:
        return f"  {label:<34}n/a"
    cells = "  ".join(_fmt(n, figs[n]) for n in ("APCER", "BPCER", "ACER", "AUC"))
    return f"  {label:<34}{cells}"


def format_fitted(fitted: Fitted, previous_threshold: float) -> str:
    cv = fitted.cross_validated
    folds_note = f"{cv['folds']}-fold cross-validated" if cv else "cross-validated"
    return "\n".join(
        [
            f"calibration: P(live) = sigmoid({fitted.platt.a:.4f} * z + {fitted.platt.b:.4f})"
            f"   threshold {fitted.threshold:.4f} (was {previous_threshold:.4f})",
            "figures with 95 % confidence intervals (Wilson; AUC: Hanley-McNeil):",
            format_figures(f"before, on the sample (at {previous_threshold:.3f})", fitted.before),
            format_figures("after, on the sample", fitted.after),
            format_figures(f"after, {folds_note}", cv),
        ]
    )
