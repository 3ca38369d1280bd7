"""DET curve and score histograms as PNG (matplotlib, Agg backend: no display needed), and the
figures each one shows, for its text alternative (``det_figures``, ``band_counts``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import BinaryIO, TypeVar

import numpy as np

from ml import pad_metrics
from ml.evaluate import TARGET_APCERS, Report

# DET axes are on the normal deviate scale; these are the ticks (as error rates).
TICKS = (0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)
CLIP = (5e-4, 1 - 5e-4)  # rates of 0 and 1 have no normal deviate
BANDS = 20  # the histograms' bins: 20 bands of 0.05 over [0, 1]
# Where a figure goes: a file, or a buffer (the admin's pages never write one to disk).
Target = TypeVar("Target", Path, BinaryIO)


def _use_agg() -> None:
    """Before pyplot is imported (in the functions: the service never needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")


def _probit(rates: np.ndarray) -> np.ndarray:
    inv = NormalDist().inv_cdf
    return np.array([inv(float(r)) for r in np.clip(rates, *CLIP)])


def det_blank_reason(live: np.ndarray, spoof: np.ndarray) -> str:
    """Why the DET curve cannot be drawn ("" when it can)."""
    if not live.size or not spoof.size:
        return (
            f"no DET curve: it needs bona fide and attack presentations "
            f"({live.size} bona fide, {spoof.size} attack passed the gates)"
        )
    apcer, bpcer = pad_metrics.det_points(live, spoof)
    inside = (apcer > CLIP[0]) & (apcer < CLIP[1]) & (bpcer > CLIP[0]) & (bpcer < CLIP[1])
    if not inside.any():
        return (
            "no DET curve: the classes are perfectly separated (APCER and BPCER are never "
            "both above 0), so every point lies on the axes"
        )
    return ""


def det_curve(live: np.ndarray, spoof: np.ndarray, path: Target, title: str) -> tuple[Target, str]:
    """The DET curve; when it cannot be drawn the image says why (and so does the result)."""
    _use_agg()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    reason = det_blank_reason(live, spoof)
    if live.size and spoof.size:
        apcer, bpcer = pad_metrics.det_points(live, spoof)
        ax.plot(_probit(apcer), _probit(bpcer), drawstyle="steps-post")
    if reason:
        ax.text(
            0.5,
            0.5,
            reason.replace(": ", ":\n", 1),
            transform=ax.transAxes,
            ha="center",
            va="center",
            wrap=True,
            fontsize=9,
        )
    ticks = _probit(np.array(TICKS))
    labels = [f"{t:.1%}".replace(".0%", "%") for t in TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.set_xlabel("APCER (attacks accepted)")
    ax.set_ylabel("BPCER (bona fide rejected)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path, reason


def histograms(
    live: np.ndarray, spoof: np.ndarray, threshold: float, path: Target, title: str
) -> Target:
    _use_agg()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    bins = band_edges().tolist()  # the same edges; matplotlib types bins as a Sequence
    ax.hist(live, bins=bins, alpha=0.6, label=f"bona fide ({live.size})")
    ax.hist(spoof, bins=bins, alpha=0.6, label=f"attack ({spoof.size})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set_xlabel("score: P(bona fide)")
    ax.set_ylabel("presentations")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def band_edges() -> np.ndarray:
    return np.linspace(0, 1, BANDS + 1)


def band_counts(scores: np.ndarray) -> list[int]:
    """How many of ``scores`` fall in each band, as the histogram draws them: each band holds
    its lower edge, the last also 1.0."""
    counts, _ = np.histogram(scores, bins=band_edges())
    return [int(n) for n in counts]


@dataclass(frozen=True)
class DetFigures:
    """What the DET curve shows in numbers (all attacks pooled, as drawn): NaN without it."""

    eer: float
    eer_threshold: float
    # (target APCER, threshold, BPCER) at each of the report's targets (1 %, 5 %, 10 %)
    points: list[tuple[float, float, float]]


def det_figures(live: np.ndarray, spoof: np.ndarray) -> DetFigures:
    eer, at = pad_metrics.fast_eer(live, spoof)
    points = [(t, *pad_metrics.bpcer_at_apcer(live, spoof, t)) for t in TARGET_APCERS]
    return DetFigures(eer, at, points)


def png_plots(live: np.ndarray, spoof: np.ndarray, threshold: float) -> list[tuple[bytes, str]]:
    """The DET curve and the histograms as PNG bytes, in memory, each with its note."""
    title = f"{live.size} bona fide / {spoof.size} attack"
    det, histogram = io.BytesIO(), io.BytesIO()
    _, reason = det_curve(live, spoof, det, title)
    histograms(live, spoof, threshold, histogram, title)
    return [(det.getvalue(), reason), (histogram.getvalue(), "")]


def save_plots(report: Report, folder: Path) -> list[tuple[Path, str]]:
    """det.png and histogram.png for the presentations that pass the gates, each with a note
    ("" or why the DET curve could not be drawn)."""
    folder.mkdir(parents=True, exist_ok=True)
    live, spoof = report.arrays()
    title = f"{report.profile} profile, {live.size} bona fide / {spoof.size} attack"
    return [
        det_curve(live, spoof, folder / "det.png", title),
        (histograms(live, spoof, report.threshold, folder / "histogram.png", title), ""),
    ]
