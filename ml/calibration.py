"""Per-tenant calibration maths: a monotone map from the fused logit to a calibrated P(live).

Platt scaling (``ml.profiles.Platt``), P = sigmoid(a * z + b) with a > 0 (monotone in z),
fitted by Newton's method on the tenant's own labelled captures with a Gaussian prior centred
on the shipped map of its profile and capture kind (``ml.profiles.shipped``), whose weight
gives way as the sample grows (PRIOR_IMAGES). Classes are weighed equally. Thresholds: at a
target APCER, or where APCER and BPCER are equal. Confidence intervals: Wilson for APCER and
BPCER (HTER, their mean over every attack pooled: the mean of their bounds, which holds with
at least 90 % when both hold), Newcombe's score interval for AUC. The procedure a tenant
runs, with its held-out figures, is ml.tenant_calibration. Plain numpy, no Django.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml import pad_metrics
from ml.profiles import CAPTURES, Platt

# The prior's weight, in images: a Gaussian prior centred on the shipped map, as informative
# as PRIOR_IMAGES images like the sample (its precision is PRIOR_IMAGES times the sample's mean
# Fisher information per image at the centre). The data's information grows with n, the
# prior's does not, so the sample weighs n / (n + PRIOR_IMAGES) against the shipped map: 3
# images 13 %, 30 images 60 %, 300 images 94 % (on simulated channels 3 images moved the map
# 16-20 % of the way to the channel's own, 300 images 77-94 %: tests/ml). Why 20: a
# tenant's sample of 20 holds, per class, about 10 images, where an error rate's 95 % interval
# is still +-0.3 wide (Wilson, 1 error in 10: [0.02, 0.40]); below that the shipped map, fitted
# on every source we have, is the better guess, above it the tenant's channel is.
PRIOR_IMAGES = 20.0
RIDGE = 1e-3  # added to the prior's precision: a sample whose logits are all equal informs one
# direction only, and the prior must still be proper in the other
MIN_SLOPE = 0.05  # a > 0: the map stays increasing even for a source whose scores are inverted
Z = 1.959964  # 95 %
WARN_PER_CLASS = 30  # ml.evaluate warns below this many images of a class
SEED = 0


IDENTITY = Platt()


def maps_of(stored: dict[str, Any]) -> dict[str, Platt]:
    """The map per capture kind of a stored calibration: {"maps": {kind: {"a", "b"}}}, the
    params {kind: {"a", "b"}}, or one {"a", "b"} for both kinds (stored before maps per kind,
    fitted over the same fused logit)."""
    if "a" in stored:
        one = Platt(float(stored["a"]), float(stored["b"]))
        return {kind: one for kind in CAPTURES}
    maps = stored.get("maps", stored)
    return {kind: Platt(float(maps[kind]["a"]), float(maps[kind]["b"])) for kind in CAPTURES}


def prior_weight(n: int, prior_images: float = PRIOR_IMAGES) -> float:
    """The weight of ``n`` images against the prior: n / (n + prior_images). (The share of
    the way a map moves toward the sample's own fit in the quadratic approximation.)"""
    return n / (n + prior_images) if n else 0.0


def class_weights(groups: Sequence[str], total: float) -> np.ndarray:
    """Weights of one class's images summing to ``total``, each group (source) weighing the
    same whatever its number of images."""
    counts = Counter(groups)
    return np.asarray([total / (len(counts) * counts[g]) for g in groups], np.float64)


def fit(
    z_live: np.ndarray,
    z_spoof: np.ndarray,
    centre: Platt = IDENTITY,
    prior_images: float = PRIOR_IMAGES,
    groups: tuple[Sequence[str], Sequence[str]] | None = None,
) -> Platt:
    """MAP estimate of (a, b) under a Gaussian prior centred on ``centre`` and worth
    ``prior_images`` images (PRIOR_IMAGES); ``a`` is kept at or above MIN_SLOPE. Classes weigh
    equally (the sample's mix of live and attack images says nothing about the traffic), and
    with ``groups`` (the source of each live and each spoof image) so do the sources within a
    class: a source with more images is not a more likely channel. With an empty class the
    sample cannot tell live from spoof: ``centre`` is returned."""
    z_live, z_spoof = np.asarray(z_live, np.float64), np.asarray(z_spoof, np.float64)
    if not len(z_live) or not len(z_spoof):
        return centre
    z = np.concatenate([z_live, z_spoof])
    y = np.concatenate([np.ones(len(z_live)), np.zeros(len(z_spoof))])
    n = len(z)
    live_groups, spoof_groups = groups or (["all"] * len(z_live), ["all"] * len(z_spoof))
    w = np.concatenate([class_weights(live_groups, n / 2), class_weights(spoof_groups, n / 2)])
    x = np.stack([z, np.ones(n)], axis=1)
    theta = np.array([centre.a, centre.b], np.float64)
    mid = theta.copy()
    p0 = 1.0 / (1.0 + np.exp(-(x @ mid)))
    per_image = (x.T * (w * p0 * (1 - p0))) @ x / n
    precision = prior_images * per_image + RIDGE * np.eye(2)
    free = np.array([True, True])

    def objective(t: np.ndarray) -> float:
        s = x @ t
        loglik = np.sum(w * (y * s - np.logaddexp(0.0, s)))
        d = t - mid
        return float(loglik - d @ precision @ d / 2)

    for _ in range(2):  # second pass only when the slope had to be pinned at MIN_SLOPE
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(x @ theta)))
            grad = x.T @ (w * (y - p)) - precision @ (theta - mid)
            hess = -(x.T * (w * p * (1 - p))) @ x - precision
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


def wilson(errors: float, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = errors / n
    denom = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _auc_variance(theta: float, n_live: int, n_spoof: int) -> float:
    """Hanley and McNeil's variance of the AUC at ``theta``, with both classes' counts less one
    replaced by their mean, (n_live + n_spoof) / 2 - 1 (Newcombe 2006, method 5)."""
    star = (n_live + n_spoof) / 2 - 1
    shape = 1 + star * ((1 - theta) / (2 - theta) + theta / (1 + theta))
    return theta * (1 - theta) * shape / (n_live * n_spoof)


def auc_interval(auc: float, n_live: int, n_spoof: int) -> tuple[float, float]:
    """Newcombe's (2006) score interval, method 5: every AUC theta whose distance from the
    estimate is within Z of its own standard error (the variance taken at theta, not at the
    estimate). Hanley and McNeil's Wald interval (the variance at the estimate) has zero width
    at AUC 1 or 0: it printed [1.000, 1.000] for a sample of 4 live and 5 spoof images; this
    one gives [0.61, 1.00] there, and about the Wald width where the AUC is far from 0 and 1."""
    if math.isnan(auc) or not n_live or not n_spoof:
        return float("nan"), float("nan")

    def inside(theta: float) -> bool:
        return (auc - theta) ** 2 <= Z * Z * _auc_variance(theta, n_live, n_spoof)

    def edge(outside: float) -> float:  # bisection between the estimate and a point outside
        lo, hi = auc, outside
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if inside(mid) else (lo, mid)
        return lo

    return (0.0 if inside(0.0) else edge(0.0)), (1.0 if inside(1.0) else edge(1.0))


def figures_of_decisions(
    live_rejected: int, n_live: int, spoof_accepted: int, n_spoof: int, auc: float
) -> dict[str, Any]:
    apcer = spoof_accepted / n_spoof if n_spoof else float("nan")
    bpcer = live_rejected / n_live if n_live else float("nan")
    a_ci, b_ci = wilson(spoof_accepted, n_spoof), wilson(live_rejected, n_live)
    return {
        "APCER": [apcer, *a_ci],
        "BPCER": [bpcer, *b_ci],
        # HTER, the mean over every attack pooled (ISO's ACER takes the worst species'): its
        # interval the mean of the two bounds, which holds with at least 90 % when both hold.
        "HTER": [(apcer + bpcer) / 2, (a_ci[0] + b_ci[0]) / 2, (a_ci[1] + b_ci[1]) / 2],
        "AUC": [auc, *auc_interval(auc, n_live, n_spoof)],
        "bona_fide": n_live,
        "attacks": n_spoof,
    }


def figures(live: np.ndarray, spoof: np.ndarray, threshold: float) -> dict[str, Any]:
    """APCER, BPCER, HTER and AUC at ``threshold``, each as [value, low, high] (95 %)."""
    return figures_of_decisions(
        int(np.sum(live < threshold)),
        live.size,
        int(np.sum(spoof >= threshold)),
        spoof.size,
        pad_metrics.auc(live, spoof),
    )


def format_cell(name: str, cell: list[float]) -> str:
    """ "APCER 0.194 [0.098, 0.350]"; "APCER -" over an empty class (tenant_protocol printed
    "APCER nan [nan, nan]" for a bona fide-only set)."""
    value, low, high = cell
    if math.isnan(value):
        return f"{name} -"
    return f"{name} {value:.3f} [{low:.3f}, {high:.3f}]"


def format_figures(label: str, figs: dict[str, Any] | None) -> str:
    if figs is None:
        return f"  {label:<34}n/a"
    cells = "  ".join(format_cell(n, figs[n]) for n in ("APCER", "BPCER", "HTER", "AUC"))
    return f"  {label:<34}{cells}"
