"""Score a folder laid out as ``live/`` and ``spoof/`` and report PAD error rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ml import metrics
from ml.errors import FaceRefused, ImageError

LABELS = ("live", "spoof")
SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass
class Report:
    threshold: float
    scores: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in LABELS})
    refused: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in LABELS})

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.scores["live"]), np.asarray(self.scores["spoof"])

    def figures(self) -> dict[str, float]:
        live, spoof = self.arrays()
        apcer, bpcer = metrics.apcer_bpcer(live, spoof, self.threshold)
        eer, eer_threshold = metrics.eer(live, spoof)
        return {
            "APCER": apcer,
            "BPCER": bpcer,
            "ACER": (apcer + bpcer) / 2,
            "AUC": metrics.auc(live, spoof),
            "EER": eer,
            "EER threshold": eer_threshold,
        }

    def format(self) -> str:
        live, spoof = self.arrays()
        lines = [
            f"bona fide (live) scored: {live.size}, refused: {len(self.refused['live'])}",
            f"attack (spoof) scored:   {spoof.size}, refused: {len(self.refused['spoof'])}",
            f"threshold: {self.threshold:.3f}",
        ]
        lines += [f"{name:<14}{value:.4f}" for name, value in self.figures().items()]
        lines += [
            f"refused {label}: {', '.join(names)}" for label, names in self.refused.items() if names
        ]
        return "\n".join(lines)


def images_in(folder: Path) -> list[tuple[str, Path]]:
    found = [
        (label, path)
        for label in LABELS
        if (folder / label).is_dir()
        for path in sorted((folder / label).iterdir())
        if path.suffix.lower() in SUFFIXES
    ]
    if not found:
        raise FileNotFoundError(f"{folder} has no images under live/ or spoof/")
    return found


def evaluate_folder(engine, folder: Path, threshold: float, progress: bool = True) -> Report:
    """Score every image; undecodable or face-free images are counted as refused."""
    report = Report(threshold)
    for label, path in tqdm(images_in(Path(folder)), desc="evaluate", disable=not progress):
        try:
            verdict = engine.check(path.read_bytes())
        except (FaceRefused, ImageError):
            report.refused[label].append(path.name)
            continue
        report.scores[label].append(verdict.p_live)
    return report
