"""Score a folder laid out as ``live/`` and ``spoof/`` and report PAD error rates.

Vocabulary of ISO/IEC 30107-3: ``live/`` holds bona fide presentations, ``spoof/`` attack
presentations; the PAI species of each attack (print, replay, ...) comes from the
``attack_type`` column of ``manifest.csv`` when the folder has one, the capture source from
its ``source`` (or ``source_repo``) column. Scores are P(bona fide) as the service gives them:
the shipped map of the capture kind (ml.profiles.shipped), or a tenant's calibration when given; a
presentation is classified bona fide when its score is at least the threshold. The ISO/IEC
30107-3 report (``iso_report``) gives APCER per PAI species and the worst of them, BPCER,
BPCER20 and BPCER10, AUC and EER, for all presentations, by capture kind (frame / crop) and by
source, with 95 % intervals from a bootstrap over sources (over subjects when the manifest
names them), never over images alone; a threshold chosen on the data is shown only with the
figures of the sources it was not chosen on.
"""

from __future__ import annotations

import csv
import math
import os
import stat
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ml import calibration, labelled, pad_metrics, profiles
from ml.errors import ImageError
from ml.profiles import CAPTURES, DEFAULT_PROFILE, PROFILES, fused_logit
from ml.quality import REFUSALS
from ml.text import escape_controls

LABELS = labelled.LABELS
SUFFIXES = labelled.SUFFIXES
UNSPECIFIED = "unspecified"
TARGET_APCERS = (0.01, 0.05, 0.10)
NOT_DECODED = "not_decoded"
# The largest image file a data set's folder may hold: the image /liveness takes at most (its
# default 16 MB body of base64). Each file is read whole into memory: a 1 GiB file named x.jpg
# would cost the command +1,024 MB of peak RSS before the decoder refused it.
MAX_IMAGE_BYTES = 12 * 1024 * 1024
# A manifest saved by a spreadsheet often starts with a UTF-8 byte order mark: read as plain
# UTF-8 it becomes part of the first column's name, and a manifest whose first column is
# ``file`` would be refused as having none.
MANIFEST_ENCODING = "utf-8-sig"


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
    subject: str = ""  # the manifest's subject column, when there is one

    @property
    def passed(self) -> bool:
        return not self.failures


SAMPLE_FIELDS = frozenset(f.name for f in fields(Sample))


@dataclass
class Report:
    threshold: float
    profile: str = DEFAULT_PROFILE
    folder: str = ""
    samples: list[Sample] = field(default_factory=list)
    crop_policy: str = "judge"
    calibration: dict[str, profiles.Platt] | None = None  # a tenant's map per capture kind
    tenant: str = ""
    resamples: int = pad_metrics.RESAMPLES  # of the bootstrap over sources (or subjects)
    seed: int = pad_metrics.SEED

    def logit(self, sample: Sample) -> float:
        return fused_logit(sample.scores, PROFILES[self.profile].weights(sample.capture))

    def p_live(self, sample: Sample) -> float:
        """The service's score: the tenant's calibration, else the shipped map of the
        sample's capture kind (ml.profiles.shipped)."""
        platt = (
            self.calibration[sample.capture]
            if self.calibration
            else profiles.shipped(self.profile, sample.capture)
        )
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

    def warnings(self) -> list[str]:
        live, spoof = self.arrays()
        least = calibration.WARN_PER_CLASS
        return [
            (
                f"only {amount(n, name + ' presentation')} "
                f"{'passes' if n == 1 else 'pass'} the gates (fewer than {least}): "
                "the figures are uncertain, read the confidence intervals"
                if n
                # not "only 0 ...: read the confidence intervals", of figures not given
                else f"no {name} presentation passes the gates: no figure that needs one"
            )
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
        """APCER and BPCER at the threshold with every attack pooled, their mean (HTER: not
        ISO's ACER, which takes the worst PAI species), AUC and EER; no interval."""
        live, spoof = self.arrays(gated)
        apcer, bpcer = pad_metrics.apcer_bpcer(live, spoof, self.threshold)
        eer, _ = pad_metrics.fast_eer(live, spoof)
        return {
            "APCER": apcer,
            "BPCER": bpcer,
            "HTER": (apcer + bpcer) / 2,
            "AUC": pad_metrics.auc(live, spoof),
            "EER": eer,
        }

    def operating_points(self) -> dict[str, dict[str, Any]]:
        """BPCER where the DET curve of all attacks pooled reaches each target APCER (the
        ISO report's BPCER20 and BPCER10 hold the worst PAI species there instead); null
        without attacks. The threshold that gets there is chosen on these very presentations:
        it is reported only in the ISO report's fitted thresholds, with figures of the sources
        it was not chosen on."""
        live, spoof = self.arrays()
        return {
            f"{target:.0%}": {
                "APCER target": target,
                "APCER of": "all attacks pooled",
                "BPCER": pad_metrics.bpcer_at_apcer(live, spoof, target)[1],
            }
            for target in TARGET_APCERS
        }

    def to_dict(self) -> dict[str, Any]:
        live, spoof = self.arrays()
        counted = Counter((s.label, s.passed) for s in self.samples)
        return {
            "folder": self.folder,
            "profile": self.profile,
            "crop_policy": self.crop_policy,
            "tenant": self.tenant,
            "calibration": (
                {kind: m.to_dict() for kind, m in self.calibration.items()}
                if self.calibration
                else None
            ),
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
            "iso": iso_report(self),
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

    def format(self, data: dict[str, Any] | None = None) -> str:
        """The report for people; ``data``: this report's to_dict(), when already made."""
        data = data or self.to_dict()
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
            *format_iso(data["iso"]),
            "",
            "without the gates (every presentation with a face; all attacks pooled, no intervals):",
            *(
                f"  {POOLED_LABELS.get(name, name):<40}{shown(name, value):>9}"
                for name, value in data["without_gates"].items()
            ),
            "",
            "quality gate refusals (answered first / failing, bona fide | attack):",
            *(
                f"  {code:<16}{r['bona_fide']:>3} /{r['bona_fide_failing']:>3}  |"
                f"{r['attack']:>3} /{r['attack_failing']:>3}"
                for code, r in data["refusals"].items()
            ),
        ]
        return "\n".join(lines)


def interval_method(iso: dict[str, Any]) -> str:
    boot = iso["bootstrap"]
    if not iso["unit"]:
        return (
            "no intervals: the manifest names no sources (an interval over images alone "
            "would treat the images of one source as independent)"
        )
    unit = iso["unit"]
    how = f"percentile bootstrap over {unit}s"
    if boot.get("within"):
        how = f"two-stage percentile bootstrap ({unit}s, then {boot['within']}s within each)"
    said = (
        f"{boot['level'] * 100:.0f} % intervals: {how} ({boot['resamples']} resamples, seed "
        f"{boot['seed']}), none from fewer than {boot['min_groups']} {unit}s"
    )
    if "exact_bound" in boot:  # reports stored before it gave [0, 0] where no source erred
        said += (
            f"; a figure no resample moves from 0 or 100 % (no {unit} errs, or every one "
            f"does) gets the exact one-sided {boot['level'] * 100:.0f} % bound over its "
            f"{unit}s instead ('exact bound')"
        )
    if iso.get("unsourced"):
        said += (
            f"; {amount(iso['unsourced'], 'presentation')} without a source (no manifest "
            "row) left out of this report"
        )
    return said


def in_sample_note(iso: dict[str, Any]) -> str:
    """Whose figures are in-sample for the maps that scored them: "" when none."""
    fitted = iso.get("in_sample_of")
    if not fitted:
        return ""
    named = [s for s in iso["scopes"] if s["kind"] == "source"]
    inside = sum(bool(s.get("in_sample")) for s in named)
    if not inside:
        return ""
    return (
        f"in-sample for {fitted}: {inside} of {amount(len(named), 'source')} (marked *) are "
        "among the sources those maps were fitted on, so their figures, and the pooled ones, "
        "are not those of a new capture channel"
    )


def scope_title(scope: dict[str, Any], unit: str) -> str:
    if not unit:
        return (
            f"{scope['name']}: {scope['bona_fide']} bona fide, "
            f"{amount(scope['attacks'], 'attack')} (no sources named)"
        )
    title = (
        f"{scope['name']}: {scope['bona_fide']} bona fide "
        f"({of_units(scope['groups_bona_fide'], unit)}), {amount(scope['attacks'], 'attack')} "
        f"({of_units(scope['groups_attacks'], unit)})"
    )
    if scope.get("in_sample"):
        title += (
            f"; in-sample for the shipped maps: {scope['in_sample']} of "
            f"{amount(scope['sources'], 'source')}"
        )
    return title


def amount(n: int, noun: str, nouns: str = "") -> str:
    """ "1 source", "3 sources", "0 sources" ("1 sources" was printed where a data set had
    one); ``nouns`` where the plural is not the noun and an s."""
    return f"{n} {noun}" if n == 1 else f"{n} {nouns or noun + 's'}"


def of_units(n: int, unit: str) -> str:
    """ "1 source", "3 sources"."""
    return amount(n, unit or "source")


def counted_on(row: dict[str, Any], unit: str) -> str:
    """ "36 presentations, 7 sources"; a figure of both classes names each class's groups,
    "79 presentations, 7 attack / 8 bona fide sources" (the fewer alone, "7 sources", read as
    if the figure rested on 7 where its bona fide side rests on 8)."""
    presentations = amount(row["presentations"], "presentation")
    if not unit:
        return presentations
    attack, bona_fide = row.get("groups_attack"), row.get("groups_bona_fide")
    if attack is None or bona_fide is None:  # one class, or a report stored before
        return f"{presentations}, {of_units(row['groups'], unit)}"
    units = amount(max(attack, bona_fide), unit or "source").split(" ", 1)[1]
    return f"{presentations}, {attack} attack / {bona_fide} bona fide {units}"


def format_iso(iso: dict[str, Any]) -> list[str]:
    lines = [
        f"{iso['standard']} figures of the presentations that pass the gates, at threshold "
        f"{iso['threshold']:.3f}",
        interval_method(iso),
    ]
    if note := in_sample_note(iso):
        lines.append(note)
    for scope in (s for s in iso["scopes"] if s["kind"] != "source"):
        # as wide as its longest note and a space: "needs bona fide and attack presentations"
        # ran into the count beside it
        wide = max([34, *(len(shown_interval(r)) + 1 for r in scope["figures"])])
        lines += ["", f"== {scope_title(scope, iso['unit'])}"]
        lines += [f"  {'figure':<34}{'value':>9}   {'95 % interval':<{wide}}counted on"]
        lines += [
            f"  {figure_label(r['name']):<34}{shown_value(r):>9}   "
            f"{shown_interval(r):<{wide}}{counted_on(r, iso['unit'])}"
            for r in scope["figures"]
        ]
        lines += [f"  note: {remark}" for remark in scope.get("remarks", [])]
        lines += format_fitted(scope["fitted"])
    return lines + format_sources([s for s in iso["scopes"] if s["kind"] == "source"])


SOURCE_WIDTH = 44  # of the source's name in the by-source table (longer names are cut)
CELL_WIDTH = 23  # of a by-source cell: "≥ 100.0 % [60.7, 100.0]" and a space


def source_cell(row: dict[str, Any]) -> str:
    """A by-source figure and its interval, when it has one: "25.0 % [25.0, 100.0]" (the
    interval in the value's unit); the reason for none is the same for every cell of a source
    (one source, too few subjects), so it is not repeated."""
    value = shown_value(row)
    if row.get("note") or row["low"] is None or not math.isfinite(row["low"]):
        return value
    low, high = (shown(row["name"], row[k]).removesuffix(" %") for k in ("low", "high"))
    return f"{value} [{low}, {high}]"


def format_sources(sources: list[dict[str, Any]]) -> list[str]:
    if not sources:
        return []
    names = SOURCE_COLUMNS
    lines = [
        "",
        "== by source (figures of one source: an interval only over its subjects)",
        f"  {'source':<{SOURCE_WIDTH}}{'bf':>4}{'at':>4}"
        + "".join(f"{h:>{CELL_WIDTH}}" for h in names.values()),
    ]
    for scope in sources:
        figures = {r["name"]: r for r in scope["figures"]}
        name = ("* " if scope.get("in_sample") else "") + scope["name"]
        lines.append(
            f"  {name[:SOURCE_WIDTH]:<{SOURCE_WIDTH}}{scope['bona_fide']:>4}{scope['attacks']:>4}"
            + "".join(f"{source_cell(figures[n]):>{CELL_WIDTH}}" for n in names)
        )
    return lines


def format_fitted(fitted: dict[str, Any] | None) -> list[str]:
    if fitted is None:
        return []
    if not fitted["rows"]:
        return [f"  thresholds chosen on these presentations: {fitted['note']}"]
    lines = [
        "  thresholds chosen on these presentations, each shown with the figures of the "
        "sources it was not chosen on (leave one source out):"
    ]
    for row in fitted["rows"]:
        lines.append(
            f"    at {row['name']}: threshold {row['threshold']:.4f} (on all sources); "
            f"{row['folds']} of {fitted['sources']} sources judged by the others' threshold:"
        )
        lines += [
            f"      {figure_label(r['name']):<32}{shown_value(r):>9}   {shown_interval(r)}"
            for r in row["figures"]
        ]
    return lines


def read_image(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of the image file at ``path``; empty (the decoder refuses it: counted as not
    decoded, as a zip's broken member is) when it is no regular file, cannot be read or is
    over ``max_bytes``. One such entry of a data set ended the run with a traceback (a folder
    or a dangling link named x.jpg, a file it may not read) or hung it (a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO's open waits for a writer
    except OSError:
        return b""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return b""
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError:
        return b""
    finally:
        os.close(fd)
    return b"" if len(data) > max_bytes else data


def images_in(folder: Path) -> list[tuple[labelled.Placed, Path]]:
    """The folder's images by ml.labelled's rule (LayoutError for one misplaced);
    FileNotFoundError when it has none."""
    found = labelled.folder_images(folder)
    if not found:
        raise FileNotFoundError(f"{folder} has no images under live/ or spoof/")
    return found


def manifest_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of the folder's manifest.csv, each value but ``file`` (the key the images are
    found by) with its control characters escaped: a data set's text (its source, subject,
    PAI species) reaches the report on the operator's terminal (an ESC sequence retitled or
    cleared it, a newline forged a line), the stored report and the admin's pages."""
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding=MANIFEST_ENCODING) as handle:
        return [
            {
                k: v if k == "file" or v is None else escape_controls(v)
                for k, v in row.items()
                if k is not None  # cells beyond the header's columns (csv puts them under None)
            }
            for row in csv.DictReader(handle)
        ]


def species_of(folder: Path) -> dict[str, str]:
    """``file`` -> ``attack_type`` from the folder's manifest.csv (empty without one)."""
    return {row["file"]: row.get("attack_type") or UNSPECIFIED for row in manifest_rows(folder)}


def subjects_of(folder: Path) -> dict[str, str]:
    """``file`` -> the ``subject`` (or ``subject_id``) column of manifest.csv, when present."""
    return {
        row["file"]: next((row[c] for c in SUBJECT_COLUMNS if row.get(c)), "")
        for row in manifest_rows(folder)
    }


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
    maps: dict[str, profiles.Platt] | None = None,
    tenant: str = "",
    resamples: int = pad_metrics.RESAMPLES,
    seed: int = pad_metrics.SEED,
    scored_profiles: Collection[str] | None = None,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> Report:
    """Inspect every image (gates under ``crop_policy``, the models of ``scored_profiles``:
    None, every model); undecodable ones, and files ``read_image`` cannot read within
    ``max_image_bytes``, count as refused. ``maps``: a tenant's calibration
    per capture kind of the fused logit."""
    folder = Path(folder)
    species, sources, subjects = species_of(folder), sources_of(folder), subjects_of(folder)
    report = Report(threshold, profile, str(folder), [], crop_policy, maps, tenant, resamples, seed)
    for placed, path in tqdm(images_in(folder), desc="evaluate", disable=not progress):
        name, label = placed.name, placed.label
        kind = "none" if label == "live" else species.get(name, UNSPECIFIED)
        # a group folder is the source when the manifest names none, as calibrate's group
        source, subject = sources.get(name) or placed.group, subjects.get(name, "")
        try:
            data = read_image(path, max_image_bytes)
            # a Frame: judged as /liveness judges it (a wide JPEG decoded finer if need be)
            found = engine.inspect(engine.decode_frame(data), crop_policy, scored_profiles)
        except ImageError:
            report.samples.append(
                Sample(name, label, kind, [NOT_DECODED], {}, source=source, subject=subject)
            )
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
                subject,
            )
        )
    return report


# --- ISO/IEC 30107-3 report --------------------------------------------------------------

SUBJECT_COLUMNS = ("subject", "subject_id")
NO_SOURCE = "(no source)"
FIGURE_LABELS = {
    "APCER_worst": "APCER, worst PAI species",
    "APCER_all": "APCER, all attacks",
    "BPCER": "BPCER",
    "ACER": "ACER = (worst APCER + BPCER) / 2",
    "BPCER20": "BPCER20 (at worst APCER 5 %)",
    "BPCER10": "BPCER10 (at worst APCER 10 %)",
    "AUC": "AUC",
    "EER": "EER",
}
# The figures of Report.figures (at the threshold, and without the gates): every attack
# pooled, no interval. The mean of the pooled APCER and BPCER is not ISO's ACER (the worst
# species' APCER): on dev 21.4 % against 26.3 %, both were named ACER in one report.
POOLED_LABELS = {
    "APCER": "APCER, all attacks",
    "BPCER": "BPCER",
    "HTER": "HTER = (APCER all attacks + BPCER) / 2",
    "ACER": "ACER",  # a report stored before HTER
    "AUC": "AUC",
    "EER": "EER",
}
# Figures resting on the worst PAI species: a lower bound when some attacks name none.
ON_WORST = ("APCER_worst", "ACER", "BPCER20", "BPCER10")
# The held-out figures of a fitted threshold, with their short headings.
HELD_OUT = {
    "APCER_all": "APCER all attacks",
    "APCER_worst": "APCER worst",
    "BPCER": "BPCER",
    "ACER": "ACER",
}
# The figures of the per-source table, with their short headings.
SOURCE_COLUMNS = {
    "APCER_worst": "APCER worst",
    "BPCER": "BPCER",
    "ACER": "ACER",
    "BPCER20": "BPCER20",
    "AUC": "AUC",
}


def figure_label(name: str) -> str:
    if name.startswith("APCER:"):
        return f"APCER, {name.split(':', 1)[1]}"
    return FIGURE_LABELS[name]


def shown(name: str, value: float | None) -> str:
    """A rate as a percentage (one decimal), AUC with three decimals, "-" for none."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3f}" if name == "AUC" else f"{value * 100:.1f} %"


def shown_value(row: dict[str, Any]) -> str:
    """A row's value, "≥ 29.4 %" where it is only a lower bound (attacks without a PAI
    species)."""
    value = shown(row["name"], row["value"])
    return f"≥ {value}" if row.get("bound") == "lower" and value != "-" else value


def shown_interval(row: dict[str, Any]) -> str:
    """ "[low, high]", or why there is none; "exact bound" after an interval no resample
    could give (pad_metrics.no_error_bound)."""
    note: str | None = row.get("note")
    if note:
        return note
    found = f"[{shown(row['name'], row['low'])}, {shown(row['name'], row['high'])}]"
    return f"{found} exact bound" if row.get("exact") else found


def _nothing_counted(name: str) -> str:
    if name.startswith("APCER:"):
        return f"no {name.split(':', 1)[1]} attack presentations"
    if name.startswith("APCER"):
        return "no attack presentations"
    if name == "BPCER":
        return "no bona fide presentations"
    return "needs bona fide and attack presentations"


def _figure_row(
    name: str,
    value: float,
    interval: tuple[float, float] | None,
    count: tuple[int, int],
    unit: str,
    lower: bool = False,
    by_class: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """``lower``: the value is a lower bound (some attacks name no PAI species); ``by_class``:
    the attack and bona fide groups of a figure of both classes (``count``'s are the fewer)."""
    low, high = interval or (float("nan"), float("nan"))
    presentations, groups = count
    note = ""
    if math.isnan(value):
        note = _nothing_counted(name)
    elif not unit:
        note = "no interval: the manifest names no sources"
    elif groups < pad_metrics.MIN_GROUPS:
        note = f"no interval: {of_units(groups, unit)} (needs {pad_metrics.MIN_GROUPS})"
    elif math.isnan(low):
        note = "no interval: most resamples do not count it"
    exact = None if note or low != high else pad_metrics.no_error_bound(value, groups)
    if exact:  # every resample gave 0 (or 1): no group erred, the percentile is [0, 0]
        low, high = exact
    if note:
        low = high = float("nan")
    return {
        "name": name,
        "value": value,
        "low": low,
        "high": high,
        "presentations": presentations,
        "groups": groups,
        "note": note,
        "exact": bool(exact),
        "bound": "lower" if lower and name in ON_WORST and not math.isnan(value) else "",
        **({"groups_attack": by_class[0], "groups_bona_fide": by_class[1]} if by_class else {}),
    }


def _exact_acer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ACER whose interval is one value while an interval of its parts is an exact bound
    (APCER 100 % and BPCER 0 % in every resample: ACER 50 % [50.0, 50.0]) gets the mean of its
    parts' intervals, as its value is the mean of theirs."""
    found = {r["name"]: r for r in rows}
    acer, parts = found.get("ACER"), [found.get("APCER_worst"), found.get("BPCER")]
    if not acer or acer["note"] or acer["low"] != acer["high"]:
        return rows
    if any(p is None or p["note"] for p in parts) or not any(p["exact"] for p in parts if p):
        return rows
    low, high = (sum(p[k] for p in parts if p) / 2 for k in ("low", "high"))
    return [{**r, "low": low, "high": high, "exact": True} if r is acer else r for r in rows]


def _figure_names(species: list[str]) -> list[str]:
    rates = ("APCER_worst", "APCER_all", "BPCER", "ACER", "BPCER20", "BPCER10")
    return [*(f"APCER:{s}" for s in species), *rates, "AUC", "EER"]


@dataclass
class IsoInput:
    """The scored presentations of a report, twice grouped: by the bootstrap's unit (source,
    or subject when the manifest names subjects but no sources) and by source (what
    leave-one-source-out leaves out); ``subjects``: the second stage of the bootstrap, within
    each source, when the manifest names subjects too."""

    by_unit: pad_metrics.Scored
    by_source: pad_metrics.Scored
    unit: str
    species: list[str]
    threshold: float
    resamples: int
    seed: int
    captures: np.ndarray
    subjects: np.ndarray | None = None

    def take(self, mask: np.ndarray) -> IsoInput:
        idx = np.flatnonzero(mask)
        return IsoInput(
            self.by_unit.take(idx),
            self.by_source.take(idx),
            self.unit,
            self.species,
            self.threshold,
            self.resamples,
            self.seed,
            self.captures[idx],
            None if self.subjects is None else self.subjects[idx],
        )

    def one_source(self) -> IsoInput:
        """A single source's presentations: the bootstrap over its subjects, when named."""
        if self.subjects is None:
            return self
        s = self.by_unit
        by_subject = pad_metrics.Scored(s.score, s.bona_fide, s.species, self.subjects)
        found = self.take(np.ones(s.score.size, bool))
        found.by_unit, found.unit, found.subjects = by_subject, "subject", None
        return found

    def bootstrap(self, statistic: pad_metrics.Statistic) -> dict[str, tuple[float, float]]:
        scored = self.by_unit
        enough = pad_metrics.MIN_GROUPS
        if not self.unit or scored.groups_with(np.ones(scored.score.size, bool)) < enough:
            return {}
        return pad_metrics.group_bootstrap(
            scored.group, statistic, self.resamples, self.seed, self.subjects
        )

    def unnamed_attacks(self) -> dict[str, int]:
        """The attacks that name no PAI species, per attack type given ("unknown": 17)."""
        attack = self.by_unit.species[~self.by_unit.bona_fide]
        return dict(Counter(str(s) for s in attack if pad_metrics.unnamed(str(s))))


def _remarks(data: IsoInput, lower: bool) -> list[str]:
    """What a scope's figures are beside their values: lower bounds (``lower``: some are),
    BPCERx that are BPCER at APCER 0 % for want of attacks."""
    found = []
    unnamed = data.unnamed_attacks()
    if lower:
        attacks = int((~data.by_unit.bona_fide).sum())
        given = ", ".join(f"{s or 'none'}: {n}" for s, n in sorted(unnamed.items()))
        found.append(
            f"≥: a lower bound: {sum(unnamed.values())} of {amount(attacks, 'attack')} name no "
            f"PAI species ({given}) and share one APCER, behind which a species may hide whose "
            "own APCER is higher: the worst species cannot be told, nor what rests on it"
        )
    if not data.by_unit.live.size:
        return found
    attack = data.by_unit.species[~data.by_unit.bona_fide]
    for name, target in pad_metrics.TARGET_APCERS.items():
        needed = math.ceil(1 / target - 1e-9)  # attacks of a species for one to be let through
        few = sorted((str(s), int(n)) for s, n in Counter(attack.tolist()).items() if n < needed)
        if few:
            listed = ", ".join(f"{s} ({n})" for s, n in few)
            found.append(
                f"{name} is BPCER at APCER 0 % for the attacks of {listed}: fewer than "
                f"{needed} attacks of a species cannot show an APCER of {target * 100:.0f} %"
            )
    return found


def iso_scope(
    data: IsoInput, name: str, kind: str, fitted: bool, maps: frozenset[str]
) -> dict[str, Any]:
    """``maps``: the sources the scores' maps were fitted on (in-sample for them)."""
    scored = data.by_unit
    values = pad_metrics.iso_figures(scored, data.threshold, data.species)
    intervals = data.bootstrap(
        lambda idx: pad_metrics.iso_figures(scored.take(idx), data.threshold, data.species)
    )
    lower = pad_metrics.lower_bounds(scored, data.threshold)
    sources = set(data.by_source.group.tolist()) - {NO_SOURCE} if data.unit == "source" else set()
    scope: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "bona_fide": int(scored.bona_fide.sum()),
        "attacks": int((~scored.bona_fide).sum()),
        "groups_bona_fide": scored.groups_with(scored.bona_fide),
        "groups_attacks": scored.groups_with(~scored.bona_fide),
        "sources": len(sources),
        "in_sample": len(sources & maps),
        "figures": _exact_acer(
            [
                _figure_row(
                    n,
                    values[n],
                    intervals.get(n),
                    pad_metrics.counted(scored, n),
                    data.unit,
                    n in lower,
                    pad_metrics.groups_by_class(scored, n),
                )
                for n in _figure_names(data.species)
            ]
        ),
        "fitted": fitted_thresholds(data) if fitted else None,
    }
    held = [r for row in (scope["fitted"] or {}).get("rows", []) for r in row["figures"]]
    bounded = any(r["bound"] for r in [*scope["figures"], *held])
    return {**scope, "remarks": _remarks(data, bounded)}


# Each source holds one class only and the others two sources' worth: e.g. one source of bona
# fide crops and one of attack crops. Shown, the threshold would have four "-" figures whose notes
# would say there are no attack (or no bona fide) presentations, where there are.
NONE_JUDGED = (
    "not validated: leaving out any one source leaves the others without bona fide or without "
    "attack presentations, so no source can be judged by the others' threshold"
)


def fitted_thresholds(data: IsoInput) -> dict[str, Any]:
    """Thresholds chosen on these presentations (at the worst species' APCER 5 %, 10 %, at
    the EER), each shown with the figures of the sources it was not chosen on: every source
    judged at the threshold chosen on the others (leave one source out)."""
    sources = data.by_source
    named = sorted(set(sources.group.tolist()) - {NO_SOURCE})
    if not data.unit:
        return {"note": "not validated: the manifest names no sources", "rows": []}
    if len(named) < 2:
        return {"note": "not validated (fewer than 2 sources): no fitted threshold", "rows": []}
    if not sources.live.size or not sources.spoof.size:
        return {"note": "needs bona fide and attack presentations", "rows": []}
    rows = []
    for label, fit in pad_metrics.FITTED.items():
        held, folds = pad_metrics.held_out_thresholds(sources, fit)
        if not folds:  # shown, it would be a threshold with no held-out figure, each "-"
            return {"note": NONE_JUDGED, "rows": []}
        judged = np.isfinite(held)
        part = data.take(judged)
        accepted = part.by_unit.score >= held[judged]

        def rates(idx: np.ndarray, part: IsoInput = part, accepted: np.ndarray = accepted) -> Any:
            return pad_metrics.decision_rates(part.by_unit.take(idx), accepted[idx], data.species)

        values = rates(np.arange(accepted.size))
        intervals = part.bootstrap(rates)
        lower = pad_metrics.worst_is_lower_bound(part.by_unit, accepted)
        figures = _exact_acer(
            [
                _figure_row(
                    n,
                    values[n],
                    intervals.get(n),
                    pad_metrics.counted(part.by_unit, n),
                    data.unit,
                    lower and n in ("APCER_worst", "ACER"),
                    pad_metrics.groups_by_class(part.by_unit, n),
                )
                for n in HELD_OUT
            ]
        )
        rows.append({"name": label, "threshold": fit(sources), "folds": folds, "figures": figures})
    return {"note": "", "sources": len(named), "rows": rows}


def kept_for_iso(report: Report) -> tuple[list[Sample], int]:
    """The presentations that pass the gates, and how many of them are left out: where some
    name a source (a manifest row or a group folder) and others do not, the others are no
    source to draw or leave out (made one "(no source)" source, 28 rowless images of dev
    narrowed BPCER's interval from [0.0, 52.4] % to [6.8, 46.9] %, and stayed in training
    when their source was left out)."""
    kept = [s for s in report.samples if s.passed]
    sourced = [s for s in kept if s.source]
    return (sourced, len(kept) - len(sourced)) if sourced else (kept, 0)


def iso_input(report: Report) -> tuple[IsoInput, int]:
    """The presentations of the ISO report with the unit of the bootstrap: sources (then
    subjects within each, when the manifest names one for every presentation), else subjects,
    else none; and how many presentations without a source were left out."""
    kept, unsourced = kept_for_iso(report)
    named_subjects = bool(kept) and all(s.subject for s in kept)
    subjects = None
    if any(s.source for s in kept):
        unit, groups = "source", [s.source for s in kept]
        if named_subjects:
            subjects = np.asarray([f"{s.source}/{s.subject}" for s in kept], dtype=object)
    elif named_subjects:
        unit, groups = "subject", [s.subject for s in kept]
    else:
        unit, groups = "", ["" for _ in kept]
    scores = [report.p_live(s) for s in kept]
    live = [s.label == "live" for s in kept]
    species = ["" if s.label == "live" else s.species for s in kept]
    sources = [s.source or NO_SOURCE for s in kept]
    data = IsoInput(
        pad_metrics.Scored.of(list(zip(scores, live, species, groups, strict=True))),
        pad_metrics.Scored.of(list(zip(scores, live, species, sources, strict=True))),
        unit,
        sorted({s for s in species if s}),
        report.threshold,
        report.resamples,
        report.seed,
        np.asarray([s.capture for s in kept], dtype=object).astype(str),
        None if subjects is None else subjects.astype(str),
    )
    return data, unsourced


def iso_report(report: Report) -> dict[str, Any]:
    data, unsourced = iso_input(report)
    # in-sample: figures of sources the shipped maps were fitted on (a tenant's maps are fitted
    # on its own calibration images, which this report cannot name)
    maps = frozenset() if report.calibration else profiles.fitting_sources()
    sources = data.by_source.group
    scopes = [iso_scope(data, "all", "all", True, maps)]
    for kind in CAPTURES:
        scopes.append(iso_scope(data.take(data.captures == kind), kind, "capture", True, maps))
    for source in sorted(set(sources.tolist()) - {NO_SOURCE}):
        if data.unit:
            one = data.take(sources == source).one_source()
            scopes.append(iso_scope(one, source, "source", False, maps))
    return {
        "standard": "ISO/IEC 30107-3",
        "threshold": report.threshold,
        "unit": data.unit,
        "species": data.species,
        "unsourced": unsourced,
        "in_sample_of": "the shipped maps" if maps else "",
        "bootstrap": {
            "resamples": report.resamples,
            "seed": report.seed,
            "level": pad_metrics.LEVEL,
            "min_groups": pad_metrics.MIN_GROUPS,
            "within": "subject" if data.subjects is not None else "",
            "exact_bound": "Clopper-Pearson, one-sided, over groups, when none errs",
        },
        "scopes": scopes,
    }


def stored_sample(stored: dict[str, Any]) -> Sample:
    """A presentation of a stored report (ml.anonymised: an index where its file was)."""
    return Sample(**{"file": "", **{k: v for k, v in stored.items() if k in SAMPLE_FIELDS}})


def stored_report(stored: dict[str, Any], threshold: float, profile: str) -> Report:
    """A Report again from its stored form (ml.anonymised.anonymised of its to_dict(), beside
    its threshold and profile), for figures it did not print; one stored without its samples
    has none."""
    platt = stored.get("calibration")
    return Report(
        threshold,
        profile,
        "",
        [stored_sample(s) for s in stored.get("samples") or []],
        stored.get("crop_policy", "judge"),
        calibration.maps_of(platt) if platt else None,
    )


def held_out_at_target(report: Report, target_apcer: float) -> dict[str, Any]:
    """APCER and BPCER of the threshold meeting ``target_apcer``, measured on the sources it
    was not chosen on (leave one source out); ``note`` says why there are none."""
    data, _ = iso_input(report)
    named = set(data.by_source.group.tolist()) - {NO_SOURCE}
    if not data.unit or len(named) < 2:
        return {"note": "not validated: the evaluation names fewer than 2 sources"}

    def fit(scored: pad_metrics.Scored) -> float:
        return min(pad_metrics.threshold_for_apcer(scored.spoof, target_apcer), 1.0)

    held, folds = pad_metrics.held_out_thresholds(data.by_source, fit)
    judged = np.isfinite(held)
    part = data.by_source.take(np.flatnonzero(judged))
    rates = pad_metrics.decision_rates(part, part.score >= held[judged], data.species)
    return {
        "note": "",
        "folds": folds,
        "sources": len(named),
        "APCER": rates["APCER_all"],
        "BPCER": rates["BPCER"],
    }
