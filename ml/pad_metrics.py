"""Presentation attack detection metrics (ISO/IEC 30107-3 vocabulary).

APCER: share of attack presentations accepted as bona fide. BPCER: share of bona fide
presentations rejected as attacks. ACER: their mean. Scores are P(bona fide).
"""

from __future__ import annotations

import numpy as np


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
    """(threshold, BPCER) at the operating point ``threshold_for_apcer(spoof, target)``."""
    threshold = threshold_for_apcer(spoof, target)
    return threshold, apcer_bpcer(live, spoof, threshold)[1]


def det_points(live: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """APCER and BPCER at every distinct score (the DET curve), thresholds ascending."""
    thresholds = np.unique(np.concatenate([live, spoof, [np.inf]]))
    rates = np.array([apcer_bpcer(live, spoof, t) for t in thresholds])
    return rates[:, 0], rates[:, 1]
