"""Fit the shipped score maps (``ml/score_maps.json``) from every labelled source we have.

python -m ml.fit_score_maps [--dev DIR] [--video DIR] [--frames N] [--out FILE | --check | --band]

Every dev image (``manifest.csv``, source = ``source_repo``) and a few frames of every clip of
the video folder (its ``manifest.csv``: label per clip; frames evenly spread in time, sent
through the engine as JPEG bytes, as a capture component would) go through the engine's own
decode and inspection (``LivenessEngine.decode_frame``, ``inspect``: a JPEG whose face is too
small only at its reduced decode is decoded again finer, as /liveness decodes it), so the
capture kind ("frame" or "crop") and the gates are decided where the service decides them
(``ml.quality.capture_of``, context ratio). Only presentations that pass the quality gates
(crop policy "judge", the default) are used: the others are never scored by the service.

App-cut crops: every judged full frame is also cut as an app that crops before sending would
cut it: a rectangle centred on the face box the engine found, ``cut_context`` times the box
on each side (the median context ratio of the judged dev crops, the measure ``capture_of``
reads; 1.019 on this data), clamped to the image, re-encoded as JPEG and sent through the
engine's decode and inspection like the clips' frames; those that come out as "crop" and pass
the gates join the crop map's fit. They keep their repository as source (leaving a source out
leaves its frames, its crops and its cut crops out together) but form their own weighting
group (``source + CUT_GROUP``): an app cutting that repository's frames is a capture channel
of its own, weighing as much as any other. Their 7 channels beside the 7 of real crops lowered
the held-out log loss on the real crops (``fast`` 0.635 -> 0.571, bootstrap over the crop
sources of the difference -0.158 to -0.001; ``thorough`` 0.582 -> 0.501) with every held-out
verdict at 0.5 unchanged (docs, Accuracy, "A score per capture kind").

For each profile and capture kind a Platt map P = sigmoid(a * z + b) of the fused logit z is
fitted (``ml.calibration.fit``: classes weighed equally, the tenant calibration's Gaussian
prior centred on the identity). It is validated leaving one source out: every source is
scored by the maps fitted on all the others, and the held-out scores are pooled into AUC,
APCER, BPCER and ACER at 0.5 and the class-balanced log loss, before (the identity map, the
old P(live)) and after, for the real presentations and, apart, for the cut crops. A source is
a repository: its images, or its clips (a real clip and its replay from one repository are
one source, as the dev images of one repository are), so frames of one video and images of
one person never sit on both sides. Plain Python, no Django.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml import calibration, pad_metrics, quality
from ml.engine import LivenessEngine
from ml.errors import ImageError
from ml.evaluate import Sample, evaluate_folder
from ml.install import default_model_dir
from ml.profiles import CAPTURES, PROFILES, SCORE_MAPS, Platt, ScoreMaps, fused_logit, logit

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "data" / "dev"
VIDEO = REPO.parent / "shared" / "data" / "video"
FRAMES_PER_CLIP = 6  # as many as a dev source has images of a class
JPEG_QUALITY = 95
CUT_MARK = "@cut"  # ends the name of an app-cut crop: "live/x.jpg@cut", "clip.mp4#12@cut"
CUT_GROUP = "/cut"  # its weighting group: its source's cut channel
CUT = "app-cut crop"  # its group of held-out figures
THRESHOLD = 0.5
TOOL = "python -m ml.fit_score_maps"
# How far a recomputed map may sit from the shipped one (tests/ml/test_score_maps.py): DTN
# runs in bf16 where the CPU has it, so ``thorough`` scores move slightly between machines.
TOLERANCE = 0.05


@dataclass(frozen=True)
class Scored:
    """One presentation that passed the gates: where it came from and its models' scores."""

    name: str  # dev file, or "clip#frame"
    source: str
    label: str  # live | spoof
    capture: str  # frame | crop
    scores: dict[str, float]
    cut: bool = False  # an app-cut crop of a judged frame

    @property
    def group(self) -> str:
        """Whom it weighs with in the fit: its source, or its source's cut channel."""
        return self.source + CUT_GROUP if self.cut else self.source

    def logit(self, profile: str) -> float:
        return fused_logit(self.scores, PROFILES[profile].weights(self.capture))


def clip_frames(path: Path, count: int) -> list[tuple[int, np.ndarray]]:
    """``count`` frames evenly spread over the clip (index, BGR image). The clip is read to its
    end first: some headers give a wrong frame count."""
    capture = cv2.VideoCapture(str(path))
    total = 0
    while capture.grab():
        total += 1
    capture.release()
    if not total:
        raise ImageError(f"{path} has no readable frame")
    wanted = sorted({int((i + 0.5) * total / count) for i in range(count)})
    frames, capture, index = [], cv2.VideoCapture(str(path)), 0
    while wanted and capture.grab():
        if index == wanted[0]:
            ok, image = capture.retrieve()
            if ok:
                frames.append((index, image))
            wanted.pop(0)
        index += 1
    capture.release()
    return frames


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def dev_samples(engine: LivenessEngine, folder: Path) -> list[Sample]:
    return evaluate_folder(engine, folder, THRESHOLD, progress=False).samples


def _jpeg(image: np.ndarray) -> bytes:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok, image.shape
    return jpeg.tobytes()


def clip_jpegs(folder: Path, count: int) -> dict[str, bytes]:
    """The JPEG bytes of the frames of every clip of the folder, by name ("clip#frame")."""
    return {
        f"{row['file']}#{index}": _jpeg(image)
        for row in _rows(folder)
        for index, image in clip_frames(folder / row["file"], count)
    }


def video_samples(engine: LivenessEngine, folder: Path, clips: dict[str, bytes]) -> list[Sample]:
    """The clips' frames (``clip_jpegs`` of the folder), labelled by its manifest, decoded and
    inspected from their JPEG bytes as /liveness judges them."""
    rows = {row["file"]: row for row in _rows(folder)}
    samples = []
    for name, jpeg in clips.items():
        row = rows[name.split("#")[0]]
        species = "none" if row["label"] == "live" else "replay"  # every spoof clip: a screen
        found = engine.inspect(engine.decode_frame(jpeg))
        samples.append(
            Sample(
                name,
                row["label"],
                species,
                list(found.failures),
                found.scores,
                capture=found.capture,
                source=row["source_repo"],
            )
        )
    return samples


def is_cut(name: str) -> bool:
    return name.endswith(CUT_MARK)


def _dev_crop(s: Sample) -> bool:
    return s.passed and s.capture == "crop" and "#" not in s.file and not is_cut(s.file)


def cut_context(samples: list[Sample]) -> float:
    """The median context ratio (``QualityMeasures.context``) of the judged dev crops: how
    tightly the crops we have were cut."""
    return float(np.median([s.measures["context"] for s in samples if _dev_crop(s)]))


def cut_face(data: bytes, engine: LivenessEngine, context: float) -> bytes:
    """The face of an image cut as an app would send it: ``context`` times the box of the face
    the engine judges (found in the image as /liveness decodes it, finer when need be:
    ``LivenessEngine.gated``) on each side, centred on it and clamped to the image, cut from
    the image at its full resolution, as JPEG."""
    frame, _, gates = engine.gated(engine.decode_frame(data))
    if gates.face is None:
        raise quality.refusal("no_face")
    decoded, (x, y, w, h) = frame.image, gates.face.box
    full = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # EXIF-oriented too
    if full is None:
        raise ImageError("the decoder could not read the image at full size")
    fx, fy = full.shape[1] / decoded.shape[1], full.shape[0] / decoded.shape[0]
    cx, cy, half_w, half_h = (
        (x + w / 2) * fx,
        (y + h / 2) * fy,
        context * w * fx / 2,
        context * h * fy / 2,
    )
    x1, y1 = max(round(cx - half_w), 0), max(round(cy - half_h), 0)
    x2, y2 = min(round(cx + half_w), full.shape[1]), min(round(cy + half_h), full.shape[0])
    return _jpeg(full[y1:y2, x1:x2])


def cut_samples(
    engine: LivenessEngine, samples: list[Sample], dev: Path, clips: dict[str, bytes]
) -> list[Sample]:
    """An app-cut crop of every judged frame of ``samples`` (dev images, and clip frames from
    ``clips``, the JPEG bytes they were judged from), inspected from its JPEG bytes;
    ``judged`` keeps those that come out as crops."""
    context = cut_context(samples)
    frames = [s for s in samples if s.passed and s.capture == "frame"]
    cuts = []
    for s in frames:
        data = clips[s.file] if "#" in s.file else (dev / s.file).read_bytes()
        found = engine.inspect(engine.decode_frame(cut_face(data, engine, context)))
        measures = asdict(found.measures) if found.measures else {}
        cuts.append(
            Sample(
                s.file + CUT_MARK,
                s.label,
                s.species,
                list(found.failures),
                found.scores,
                measures,
                found.capture,
                s.source,
            )
        )
    return cuts


def judged(samples: list[Sample]) -> list[Scored]:
    """The presentations the service would judge (they pass every gate), and the app-cut
    crops that the service would judge as crops."""
    return [
        Scored(s.file, s.source, s.label, s.capture, s.scores, is_cut(s.file))
        for s in samples
        if s.passed and (s.capture == "crop" or not is_cut(s.file))
    ]


def _split(items: list[Scored], profile: str) -> tuple[np.ndarray, np.ndarray]:
    live = np.asarray([s.logit(profile) for s in items if s.label == "live"], np.float64)
    spoof = np.asarray([s.logit(profile) for s in items if s.label == "spoof"], np.float64)
    return live, spoof


def fit_maps(items: list[Scored], profile: str) -> dict[str, Platt]:
    """The map of each capture kind, fitted on that kind's presentations, each source weighing
    the same within a class (leaving one source out on dev and the clips, class-balanced
    sources lowered the held-out ACER at 0.5 from 0.176 to 0.171 with ``fast`` and from 0.174
    to 0.151 with ``thorough``, against images weighing the same)."""
    return {kind: _fit([s for s in items if s.capture == kind], profile) for kind in CAPTURES}


def _fit(items: list[Scored], profile: str) -> Platt:
    groups = tuple([s.group for s in items if s.label == label] for label in ("live", "spoof"))
    return calibration.fit(*_split(items, profile), groups=(groups[0], groups[1]))


def leave_one_source_out(items: list[Scored], profile: str) -> list[tuple[Scored, float]]:
    """Every presentation with its P(live) under the maps fitted without its source."""
    held_out = []
    for source in sorted({s.source for s in items}):
        maps = fit_maps([s for s in items if s.source != source], profile)
        held_out += [(s, maps[s.capture].p(s.logit(profile))) for s in items if s.source == source]
    return held_out


def _figures(pairs: list[tuple[Scored, float]]) -> dict[str, Any]:
    live = np.asarray([p for s, p in pairs if s.label == "live"])
    spoof = np.asarray([p for s, p in pairs if s.label == "spoof"])
    apcer, bpcer = pad_metrics.apcer_bpcer(live, spoof, THRESHOLD)
    return {
        "balanced_log_loss": _round(balanced_log_loss(live, spoof)),
        "AUC": _round(pad_metrics.auc(live, spoof)),
        "APCER": _round(apcer),
        "BPCER": _round(bpcer),
        "ACER": _round((apcer + bpcer) / 2),
        "bona_fide": int(live.size),
        "attacks": int(spoof.size),
        "sources": len({s.source for s, _ in pairs}),
    }


def balanced_log_loss(live: np.ndarray, spoof: np.ndarray) -> float:
    """Cross-entropy of P(live), each class weighed equally (as the fit weighs them): how well
    the scores are calibrated, not only ranked; a map that makes 0.5 mean the same on every
    source lowers it on held-out sources. NaN when both classes are empty."""
    losses = [float(np.mean(-np.log(np.clip(p, 1e-6, 1.0)))) for p in (live, 1.0 - spoof) if p.size]
    return float(np.mean(losses)) if losses else float("nan")


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def loso_figures(items: list[Scored], profile: str) -> dict[str, dict[str, Any]]:
    """Pooled held-out figures at 0.5, before (identity) and after (maps fitted on the other
    sources), for all real presentations, for each capture kind of them, and for the app-cut
    crops (CUT) apart."""
    after = leave_one_source_out(items, profile)
    before = [(s, calibration.IDENTITY.p(s.logit(profile))) for s in items]
    groups = (
        {"all": lambda s: not s.cut}
        | {k: (lambda s, k=k: s.capture == k and not s.cut) for k in CAPTURES}
        | {CUT: lambda s: s.cut}
    )
    return {
        group: {
            "before": _figures([(s, p) for s, p in before if keep(s)]),
            "after": _figures([(s, p) for s, p in after if keep(s)]),
        }
        for group, keep in groups.items()
    }


def source_counts(samples: list[Sample]) -> dict[str, Any]:
    """Per source: judged presentations per capture kind and label, and refused ones; its
    app-cut crops judged as crops, and those not (refused, or a frame still)."""
    out: dict[str, Any] = {}
    labels = ("live", "spoof")
    for source in sorted({s.source for s in samples}):
        mine = [s for s in samples if s.source == source and not is_cut(s.file)]
        cuts = [s for s in samples if s.source == source and is_cut(s.file)]
        judged_counts = Counter((s.capture, s.label) for s in mine if s.passed)
        refused = Counter(s.label for s in mine if not s.passed)
        kept = Counter(s.label for s in cuts if s.passed and s.capture == "crop")
        out[source] = {
            "origin": "video frames" if "#" in mine[0].file else "dev images",
            **{kind: {label: judged_counts[kind, label] for label in labels} for kind in CAPTURES},
            "refused_by_gates": {label: refused[label] for label in labels},
            CUT: {label: kept[label] for label in labels},
            "cuts_not_judged_as_crops": {
                label: sum(s.label == label for s in cuts) - kept[label] for label in labels
            },
        }
    return out


def build(samples: list[Sample], precision: str, frames: int) -> dict[str, Any]:
    items = judged(samples)
    return {
        "maps": {
            profile: {kind: platt.to_dict() for kind, platt in fit_maps(items, profile).items()}
            for profile in PROFILES
        },
        "provenance": {
            "fitted": True,
            "tool": TOOL,
            "date": datetime.now(UTC).date().isoformat(),
            "method": (
                "Platt map per profile and capture kind of the fused logit (ml.calibration.fit:"
                " classes weighed equally and the sources within a class weighed equally, "
                "Gaussian prior on (a, b) centred on (1, 0), "
                f"worth {calibration.PRIOR_IMAGES:g} images); presentations passing the "
                "quality gates (crop policy judge); frames_per_clip "
                f"{frames} (JPEG quality {JPEG_QUALITY}); engine precision {precision} "
                "(DTN in bf16 "
                "where the CPU has it); the crop maps also on an app-cut crop of every judged "
                f"frame ({cut_context(samples):.4f} times the face box, the median context of "
                "the judged dev crops; JPEG quality "
                f"{JPEG_QUALITY}) judged as a crop, in a weighting group per source of its own"
            ),
            "validation": (
                "leave one source out: each source scored by the maps fitted on the others, "
                "held-out scores pooled (a source's cut crops held out with it); threshold "
                f"0.5; before = identity map; '{CUT}': the cut crops, apart from the rest"
            ),
            "sources": source_counts(samples),
            "leave_one_source_out": {p: loso_figures(items, p) for p in PROFILES},
        },
    }


def collect(engine: LivenessEngine, dev: Path, video: Path, frames: int) -> list[Sample]:
    clips = clip_jpegs(video, frames)  # read once: the frames are judged, then cut
    samples = dev_samples(engine, dev) + video_samples(engine, video, clips)
    return samples + cut_samples(engine, samples, dev, clips)


def differences(shipped: ScoreMaps, fitted: dict[str, Any]) -> list[str]:
    """Where a recomputed map differs from the shipped one by more than TOLERANCE."""
    found = []
    for profile in PROFILES:
        for kind in CAPTURES:
            for key in ("a", "b"):
                old = shipped["maps"].get(profile, {}).get(kind, {}).get(key)
                new = fitted["maps"][profile][kind][key]
                if old is None or abs(old - new) > TOLERANCE:
                    found.append(f"{profile}/{kind}/{key}: shipped {old}, recomputed {new:.4f}")
    return found


def format_loso(doc: dict[str, Any]) -> str:
    lines = [
        f"{'profile':<10} {'capture':<13}{'n bf/at':>9}  {'log loss':>13}"
        f"{'AUC':>16}{'APCER':>16}{'BPCER':>16}{'ACER':>16}   (before -> after, at 0.5)"
    ]
    for profile, groups in doc["provenance"]["leave_one_source_out"].items():
        for group, ba in groups.items():
            b, a = ba["before"], ba["after"]
            cells = "".join(
                f"{_fmt(b[k]):>6} -> {_fmt(a[k]):<6}"
                for k in ("balanced_log_loss", "AUC", "APCER", "BPCER", "ACER")
            )
            lines.append(f"{profile:<10} {group:<13}{b['bona_fide']:>4}/{b['attacks']:<4}  {cells}")
    for profile, kinds in doc["maps"].items():
        for kind, m in kinds.items():
            lines.append(f"map {profile}/{kind}: P = sigmoid({m['a']:.4f} * z + {m['b']:.4f})")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rounded(doc: dict[str, Any]) -> dict[str, Any]:
    for kinds in doc["maps"].values():
        for m in kinds.values():
            m["a"], m["b"] = round(m["a"], 4), round(m["b"], 4)
    return doc


# The default band of a when_unsure tenant (accounts.Tenant.challenge_band), by a rule written
# down before its figures were looked at: the largest band, in steps of BAND_STEP logits around
# the default threshold, that sends at most BAND_MAX_ASKED of the held-out bona fide
# presentations of BAND_PROFILE (frames and crops pooled, not the app-cut crops) to the
# challenge.
BAND_STEP = 0.25
BAND_MAX_ASKED = 0.20
BAND_PROFILE = "fast"


def distances(pairs: list[tuple[Scored, float]], threshold: float) -> list[float]:
    """Each held-out P(live)'s distance from ``threshold``, in logits."""
    return [abs(logit(p) - logit(threshold)) for _, p in pairs]


def within(pairs: list[tuple[Scored, float]], band: float, threshold: float) -> float:
    """The share of ``pairs`` whose score lies in the band (NaN when there are none)."""
    found = distances(pairs, threshold)
    return sum(d <= band for d in found) / len(found) if found else float("nan")


def default_band(pairs: list[tuple[Scored, float]], threshold: float = THRESHOLD) -> float:
    """The rule above on held-out ``pairs``: the largest multiple of BAND_STEP asking at most
    BAND_MAX_ASKED of the real bona fide presentations (0 when even the narrowest asks more)."""
    live = [(s, p) for s, p in pairs if s.label == "live" and not s.cut]
    if not live:
        return 0.0
    band = 0.0
    while within(live, band + BAND_STEP, threshold) <= BAND_MAX_ASKED:
        band += BAND_STEP
    return band


def _errors(pairs: list[tuple[Scored, float]], threshold: float) -> list[tuple[Scored, float]]:
    return [(s, p) for s, p in pairs if (p >= threshold) != (s.label == "live")]


def band_figures(
    pairs: list[tuple[Scored, float]], band: float, threshold: float = THRESHOLD
) -> dict[str, dict[str, Any]]:
    """Per capture kind (and the app-cut crops apart): the bona fide presentations and the
    held-out errors at ``threshold`` (either class), and the share of each inside the band:
    the bona fide a when_unsure tenant would ask for the challenge, and the errors a passed or
    failed challenge would decide instead of the score."""
    groups = {"all": lambda s: not s.cut} | {
        k: (lambda s, k=k: s.capture == k and not s.cut) for k in CAPTURES
    }
    out = {}
    for group, keep in (groups | {CUT: lambda s: s.cut}).items():
        mine = [(s, p) for s, p in pairs if keep(s)]
        live = [(s, p) for s, p in mine if s.label == "live"]
        errors = _errors(mine, threshold)
        out[group] = {
            "bona_fide": len(live),
            "bona_fide_asked": _round(within(live, band, threshold)),
            "errors": len(errors),
            "errors_in_band": _round(within(errors, band, threshold)),
        }
    return out


def format_band(band: float, figures: dict[str, dict[str, Any]], wider: float) -> str:
    lines = [
        f"default band ({BAND_PROFILE}, held out by source, threshold {THRESHOLD}): "
        f"{band:g} logits (the largest step of {BAND_STEP:g} asking at most "
        f"{BAND_MAX_ASKED:.0%} of the bona fide; {band + BAND_STEP:g} would ask {wider:.3f})",
        f"{'capture':<14}{'bona fide':>10}{'asked':>8}{'errors':>8}{'in band':>9}",
    ]
    for group, f in figures.items():
        lines.append(
            f"{group:<14}{f['bona_fide']:>10}{_fmt(f['bona_fide_asked']):>8}"
            f"{f['errors']:>8}{_fmt(f['errors_in_band']):>9}"
        )
    return "\n".join(lines)


def band_report(items: list[Scored]) -> str:
    """What ``--band`` prints: the default band by the rule, and its figures per kind."""
    pairs = leave_one_source_out(items, BAND_PROFILE)
    band = default_band(pairs)
    live = [(s, p) for s, p in pairs if s.label == "live" and not s.cut]
    return format_band(band, band_figures(pairs, band), within(live, band + BAND_STEP, THRESHOLD))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", type=Path, default=Path(os.environ.get("FACIA_DEV_DATA", DEV)))
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, default=FRAMES_PER_CLIP, help="per clip")
    parser.add_argument("--out", type=Path, default=SCORE_MAPS)
    parser.add_argument(
        "--check", action="store_true", help="compare with the shipped file, write nothing"
    )
    parser.add_argument(
        "--band",
        action="store_true",
        help="print the when_unsure challenge's default band and its figures, write nothing",
    )
    parser.add_argument(
        "--model-dir", type=Path, default=default_model_dir(), help="default: the service's"
    )
    args = parser.parse_args(argv)
    engine = LivenessEngine.load(args.model_dir)
    samples = collect(engine, args.dev, args.video, args.frames)
    if args.band:
        print(band_report(judged(samples)))
        return 0
    doc = _rounded(build(samples, engine.precision, args.frames))
    print(format_loso(doc))
    if args.check:
        found = differences(json.loads(args.out.read_text()), doc)
        print("\n".join(found) or f"the shipped maps match (within {TOLERANCE})")
        return 1 if found else 0
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
