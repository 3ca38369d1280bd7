"""Score a folder laid out as ``live/`` and ``spoof/`` and report PAD error rates.

Vocabulary of ISO/IEC 30107-3: ``live/`` holds bona fide presentations, ``spoof/`` attack
presentations; the PAI species of each attack (print, replay, ...) comes from the
``attack_type`` column of ``manifest.csv`` when the folder has one, the capture source from
its ``source`` (or ``source_repo``) column. Scores are P(bona fide) as the service gives them:
the shipped map of the capture kind (ml.score_maps), or a tenant's calibration when given; a
presentation is classified bona fide when its score is at least the threshold. Figures carry
95 % confidence intervals (ml.calibration) and are broken down by capture kind (frame / crop)
and by source.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ml import calibration, pad_metrics, score_maps
from ml.errors import ImageError
from ml.profiles import CAPTURES, DEFAULT_PROFILE, PROFILES, fused_logit
from ml.quality import REFUSALS

LABELS = ("live", "spoof")
SUFFIXES = {".jpg", ".jpeg", ".png"}
UNSPECIFIED = "unspecified"
TARGET_APCERS = (0.01, 0.05, 0.10)
NOT_DECODED = "not_decoded"


@dataclass
class Sample:
    file: str  # relative to the folder, e.g. "spoof/print_1.jpg"
    label: str  # live (bona fide) or spoof (attack)
    species: str  # PAI species of an attack; "none" for bona fide
    failures: list[str]  # every quality gate it fails (first = the service's answer)
    scores: dict[str, float]  # each model's P(bona fide), empty without a face
    measures: dict[str, float] = field(default_factory=dict)  # what the gates measured
    capture: str = ""  # "frame" or "crop" (empty without a face)
    source: str = ""  # the manifest's source column, when there is one

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Report:
    threshold: float
    profile: str = DEFAULT_PROFILE
    folder: str = ""
    samples: list[Sample] = field(default_factory=list)
    crop_policy: str = "judge"
    calibration: calibration.Platt | None = None  # a tenant's, when evaluated with --tenant
    tenant: str = ""

    def logit(self, sample: Sample) -> float:
        return fused_logit(sample.scores, PROFILES[self.profile].weights(sample.capture))

    def p_live(self, sample: Sample) -> float:
        """The service's score: the tenant's calibration, else the shipped map of the
        sample's capture kind (ml.score_maps)."""
        platt = self.calibration or score_maps.shipped(self.profile, sample.capture)
        return platt.p(self.logit(sample))

    def arrays(self, gated: bool = True, keep: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Bona fide and attack scores of the presentations that pass the gates (or of every
        presentation with a face when ``gated`` is False), optionally only those ``keep``
        (a predicate on the sample) accepts."""
        kept = [
            s
            for s in self.samples
            if (s.passed if gated else bool(s.scores)) and (keep is None or keep(s))
        ]
        live, spoof = (
            np.asarray([self.p_live(s) for s in kept if s.label == label]) for label in LABELS
        )
        return live, spoof

    def intervals(self, keep: Any = None, gated: bool = True) -> dict[str, Any]:
        """APCER, BPCER, ACER, AUC as [value, low, high] (95 %) with the class counts."""
        live, spoof = self.arrays(gated, keep)
        return calibration.figures(live, spoof, self.threshold)

    def by_capture(self) -> dict[str, dict[str, Any]]:
        return {kind: self.intervals(lambda s, k=kind: s.capture == k) for kind in CAPTURES}

    def by_source(self) -> dict[str, dict[str, Any]]:
        sources = sorted({s.source for s in self.samples if s.source})
        return {src: self.intervals(lambda s, k=src: s.source == k) for src in sources}

    def warnings(self) -> list[str]:
        live, spoof = self.arrays()
        least = calibration.WARN_PER_CLASS
        return [
            f"only {n} {name} presentations pass the gates (fewer than {least}): "
            "the figures are uncertain, read the confidence intervals"
            for name, n in (("bona fide", live.size), ("attack", spoof.size))
            if n < least
        ]

    def species_scores(self) -> dict[str, np.ndarray]:
        found: dict[str, list[float]] = {}
        for s in self.samples:
            if s.label == "spoof" and s.passed:
                found.setdefault(s.species, []).append(self.p_live(s))
        return {k: np.asarray(v) for k, v in sorted(found.items())}

    def refusals(self) -> dict[str, dict[str, Any]]:
        """Per gate: presentations it answered (first failure) and all it fails, per label."""
        first = Counter((s.failures[0], s.label) for s in self.samples if s.failures)
        every = Counter((code, s.label) for s in self.samples for code in s.failures)
        codes = [*REFUSALS, NOT_DECODED]
        return {
            code: {
                "bona_fide": first[code, "live"],
                "attack": first[code, "spoof"],
                "bona_fide_failing": every[code, "live"],
                "attack_failing": every[code, "spoof"],
            }
            for code in codes
            if code != NOT_DECODED or every[code, "live"] or every[code, "spoof"]
        }

    def figures(self, gated: bool = True) -> dict[str, float]:
        live, spoof = self.arrays(gated)
        apcer, bpcer = pad_metrics.apcer_bpcer(live, spoof, self.threshold)
        eer, eer_threshold = pad_metrics.eer(live, spoof)
        return {
            "APCER": apcer,
            "BPCER": bpcer,
            "ACER": (apcer + bpcer) / 2,
            "AUC": pad_metrics.auc(live, spoof),
            "EER": eer,
            "EER threshold": eer_threshold,
        }

    def operating_points(self) -> dict[str, dict[str, float]]:
        live, spoof = self.arrays()
        points = {}
        for target in TARGET_APCERS:
            threshold, bpcer = pad_metrics.bpcer_at_apcer(live, spoof, target)
            points[f"{target:.0%}"] = {
                "APCER target": target,
                "threshold": threshold,
                "BPCER": bpcer,
            }
        return points

    def to_dict(self) -> dict[str, Any]:
        live, spoof = self.arrays()
        counted = Counter((s.label, s.passed) for s in self.samples)
        return {
            "folder": self.folder,
            "profile": self.profile,
            "crop_policy": self.crop_policy,
            "tenant": self.tenant,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "threshold": self.threshold,
            "warnings": self.warnings(),
            "presentations": {
                kind: {
                    "total": counted[label, True] + counted[label, False],
                    "refused": counted[label, False],
                    "scored": counted[label, True],
                }
                for kind, label in (("bona_fide", "live"), ("attack", "spoof"))
            },
            "at_threshold": self.figures(),
            "intervals": self.intervals(),
            "by_capture": self.by_capture(),
            "by_source": self.by_source(),
            "APCER_per_PAI_species": {
                species: float(np.mean(scores >= self.threshold))
                for species, scores in self.species_scores().items()
            },
            "BPCER_at_APCER": self.operating_points(),
            "without_gates": self.figures(gated=False),
            "refusals": self.refusals(),
            "scores": {"bona_fide": live.tolist(), "attack": spoof.tolist()},
            "samples": [asdict(s) for s in self.samples],
        }

    def format(self) -> str:
        data = self.to_dict()
        pres = data["presentations"]
        scoring = (
            f"tenant {self.tenant}'s calibration"
            if self.calibration
            else "uncalibrated, shipped map per capture kind"
            + (f" (tenant {self.tenant})" if self.tenant else "")
        )
        lines = [
            f"profile: {self.profile}   threshold: {self.threshold:.3f}   crop policy: "
            f"{self.crop_policy}   scores: {scoring}",
            *(f"WARNING: {w}" for w in data["warnings"]),
            "bona fide presentations: {total}, refused by the gates: {refused}, "
            "scored: {scored}".format(**pres["bona_fide"]),
            "attack presentations:    {total}, refused by the gates: {refused}, "
            "scored: {scored}".format(**pres["attack"]),
            "",
            "on the presentations that pass the gates:",
            *(f"  {name:<14}{value:.4f}" for name, value in data["at_threshold"].items()),
            "  with 95 % confidence intervals (Wilson; AUC: Hanley-McNeil):",
            f"    {'all':<40}{_interval_line(data['intervals'])}",
            "  by capture kind:",
            *(f"    {k:<40}{_interval_line(v)}" for k, v in data["by_capture"].items()),
            *(["  by source (manifest):"] if data["by_source"] else []),
            *(f"    {k[:40]:<40}{_interval_line(v)}" for k, v in data["by_source"].items()),
            "  APCER per PAI species:",
            *(
                f"    {species:<12}{value:.4f}  ({self.species_scores()[species].size})"
                for species, value in data["APCER_per_PAI_species"].items()
            ),
            "  BPCER at a target APCER (threshold = the lowest that meets it):",
            *(
                f"    APCER {name:>4}: threshold {p['threshold']:.4f}  BPCER {p['BPCER']:.4f}"
                for name, p in data["BPCER_at_APCER"].items()
            ),
            "",
            "without the gates (every presentation with a face):",
            *(f"  {name:<14}{value:.4f}" for name, value in data["without_gates"].items()),
            "",
            "quality gate refusals (answered first / failing, bona fide | attack):",
            *(
                f"  {code:<16}{r['bona_fide']:>3} /{r['bona_fide_failing']:>3}  |"
                f"{r['attack']:>3} /{r['attack_failing']:>3}"
                for code, r in data["refusals"].items()
            ),
        ]
        return "\n".join(lines)


def _interval_line(figs: dict[str, Any]) -> str:
    counts = f"{figs['bona_fide']:>3} bf / {figs['attacks']:>3} at"

    def cell(name: str) -> str:
        value, low, high = figs[name]
        if math.isnan(value):
            return f"{name} n/a"
        return f"{name} {value:.3f} [{low:.3f}, {high:.3f}]"

    return f"{counts}  " + "  ".join(cell(n) for n in ("APCER", "BPCER", "ACER", "AUC"))


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


def manifest_rows(folder: Path) -> list[dict[str, str]]:
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="") as handle:
        return list(csv.DictReader(handle))


def species_of(folder: Path) -> dict[str, str]:
    """``file`` -> ``attack_type`` from the folder's manifest.csv (empty without one)."""
    return {row["file"]: row.get("attack_type") or UNSPECIFIED for row in manifest_rows(folder)}


def sources_of(folder: Path) -> dict[str, str]:
    """``file`` -> the ``source`` (or ``source_repo``) column of manifest.csv, when present."""
    return {
        row["file"]: row.get("source") or row.get("source_repo") or ""
        for row in manifest_rows(folder)
    }


def evaluate_folder(
    engine: Any,
    folder: Path,
    threshold: float,
    progress: bool = True,
    profile: str = DEFAULT_PROFILE,
    crop_policy: str = "judge",
    platt: calibration.Platt | None = None,
    tenant: str = "",
) -> Report:
    """Inspect every image (gates under ``crop_policy`` and every model); undecodable ones
    count as refused. ``platt``: a tenant's calibration of the fused logit."""
    folder = Path(folder)
    species, sources = species_of(folder), sources_of(folder)
    report = Report(threshold, profile, str(folder), [], crop_policy, platt, tenant)
    for label, path in tqdm(images_in(folder), desc="evaluate", disable=not progress):
        name = f"{label}/{path.name}"
        kind = "none" if label == "live" else species.get(name, UNSPECIFIED)
        source = sources.get(name, "")
        try:
            found = engine.inspect(engine.decode(path.read_bytes()), crop_policy)
        except ImageError:
            report.samples.append(Sample(name, label, kind, [NOT_DECODED], {}, source=source))
            continue
        measures = asdict(found.measures) if found.measures else {}
        report.samples.append(
            Sample(
                name,
                label,
                kind,
                list(found.failures),
                found.scores,
                measures,
                found.capture,
                source,
            )
        )
    return report
