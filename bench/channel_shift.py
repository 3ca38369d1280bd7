"""How a capture channel's properties move the fused logit: a paired measurement.

python -m bench.channel_shift [--profile fast|thorough] [--frames N] [--no-cuts] [--json FILE]

Every labelled presentation the score maps are fitted on (``ml.fit_score_maps``: the dev
images, 6 frames of every clip sent as JPEG, and an app-cut crop of every judged frame) that
the service judges (it passes the gates; its kind as the engine decides it) is sent again
after one simulated change of capture channel: JPEG re-encoding, a smaller image, resolution
lost and upscaled back, blur, gamma, a colour cast, sensor noise, chroma subsampling. Each
change is applied to the pixels the engine decoded from the original bytes and sent as new
bytes (PNG, lossless, unless the change is the JPEG quality itself) through the engine's full
decode, detection, gates and classifiers, so the face box and the capture kind are decided
again. ``lossless`` (the decoded pixels as PNG) is the control: it changes nothing.

Per change, kind (frame, crop, app-cut crop) and class: how many were judged and how many the
change made unjudgeable (refused by a gate), the mean and median change of the fused logit
(paired, per presentation) with a bootstrap interval of the mean over sources (whole sources
drawn, ``ml.pad_metrics.group_bootstrap``), the share of verdicts at 0.5 (after the shipped
map of the kind) that flip, and the AUC of the fused logit before and after. Then the spread
between sources it is to be compared with: each source's mean fused logit, per kind and class.
Plain Python and the engine, no Django.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml import fit_score_maps, pad_metrics, profiles
from ml.engine import LivenessEngine
from ml.errors import ImageError
from ml.install import default_model_dir
from ml.profiles import DEFAULT_PROFILE, PROFILES

THRESHOLD = 0.5
KINDS = ("frame", "crop", fit_score_maps.CUT)
LABELS = ("live", "spoof")
Transform = Callable[[np.ndarray, str], bytes]  # decoded BGR pixels, name -> bytes to send


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok, image.shape
    return data.tobytes()


def _jpeg(quality: int) -> Transform:
    def encode(image: np.ndarray, _: str) -> bytes:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, image.shape
        return data.tobytes()

    return encode


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _down(scale: float) -> Transform:
    return lambda image, _: _png(_resized(image, scale))


def _down_up(scale: float) -> Transform:
    def lose(image: np.ndarray, _: str) -> bytes:
        size = (image.shape[1], image.shape[0])
        return _png(cv2.resize(_resized(image, scale), size, interpolation=cv2.INTER_LINEAR))

    return lose


def _blur(sigma: float) -> Transform:
    return lambda image, _: _png(cv2.GaussianBlur(image, (0, 0), sigma))


def _gamma(gamma: float) -> Transform:
    table = np.clip(255 * (np.arange(256) / 255) ** gamma + 0.5, 0, 255).astype(np.uint8)
    return lambda image, _: _png(cv2.LUT(image, table))


def _cast(gains_bgr: tuple[float, float, float]) -> Transform:
    gains = np.asarray(gains_bgr, np.float32)
    return lambda image, _: _png(np.clip(image * gains + 0.5, 0, 255).astype(np.uint8))


def _noise(sigma: float) -> Transform:
    def add(image: np.ndarray, name: str) -> bytes:
        rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same noise every run
        noisy = image + rng.normal(0.0, sigma, image.shape)
        return _png(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))

    return add


def _chroma_420(image: np.ndarray, _: str) -> bytes:
    """Colour at half resolution each way (4:2:0), luma untouched, as most video codecs send."""
    ycc = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    size = (image.shape[1], image.shape[0])
    for channel in (1, 2):
        half = _resized(ycc[:, :, channel], 0.5)
        ycc[:, :, channel] = cv2.resize(half, size, interpolation=cv2.INTER_LINEAR)
    return _png(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR))


TRANSFORMS: dict[str, Transform] = {
    "lossless": lambda image, _: _png(image),  # the control: the same pixels
    "jpeg 90": _jpeg(90),
    "jpeg 70": _jpeg(70),
    "jpeg 50": _jpeg(50),
    "chroma 4:2:0": _chroma_420,
    "down 0.5x": _down(0.5),
    "down 0.25x": _down(0.25),
    "down-up 0.5x": _down_up(0.5),
    "down-up 0.25x": _down_up(0.25),
    "blur 1": _blur(1.0),
    "blur 2": _blur(2.0),
    "gamma 0.7": _gamma(0.7),
    "gamma 1.4": _gamma(1.4),
    "warm +-10%": _cast((0.9, 1.0, 1.1)),
    "cool +-10%": _cast((1.1, 1.0, 0.9)),
    "noise 4": _noise(4.0),
}


@dataclass(frozen=True)
class Presentation:
    """One labelled presentation the service judges: the bytes it was judged from."""

    name: str
    source: str
    label: str
    kind: str  # frame | crop | app-cut crop (as the engine decided on the original bytes)
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """What the engine made of one image: judged or not (the first refusal), its kind, fused
    logit, P(live) after the shipped map of that kind, and the face's sharpness measure."""

    judged: bool
    refusal: str
    capture: str
    z: float
    p: float
    sharpness: float


def judge(engine: LivenessEngine, data: bytes, profile: str) -> Outcome:
    try:
        found = engine.inspect(engine.decode(data), profiles=[profile])
    except ImageError:
        return Outcome(False, "undecodable", "", math.nan, math.nan, math.nan)
    if found.measures is None:
        return Outcome(False, "no_face", "", math.nan, math.nan, math.nan)
    z = found.logit(profile)
    p = profiles.shipped(profile, found.capture).p(z)
    refusal = found.failures[0] if found.failures else ""
    return Outcome(not found.failures, refusal, found.capture, z, p, found.measures.sharpness)


def _labelled(dev: Path, video: Path, frames: int) -> list[tuple[str, str, str, bytes]]:
    """(name, source, label, bytes) of every dev image and of the clips' frames (as
    ``ml.fit_score_maps`` sends them)."""
    rows = [
        (r["file"], r["source_repo"], r["label"], (dev / r["file"]).read_bytes())
        for r in fit_score_maps._rows(dev)
    ]
    clips = {r["file"]: r for r in fit_score_maps._rows(video)}
    for name, data in fit_score_maps.clip_jpegs(video, frames).items():
        row = clips[name.split("#")[0]]
        rows.append((name, row["source_repo"], row["label"], data))
    return rows


def presentations(
    engine: LivenessEngine,
    labelled: Sequence[tuple[str, str, str, bytes]],
    profile: str,
    cuts: bool = True,
) -> list[tuple[Presentation, Outcome]]:
    """The judged ones among ``labelled``, with their outcome; with ``cuts``, an app-cut crop
    of every judged frame (cut as ``ml.fit_score_maps.cut_face`` cuts it) judged as a crop."""
    judged = []
    for name, source, label, data in labelled:
        outcome = judge(engine, data, profile)
        if outcome.judged:
            judged.append((Presentation(name, source, label, outcome.capture, data), outcome))
    if cuts:
        judged += _cuts(engine, judged, profile)
    return judged


def _cuts(
    engine: LivenessEngine, judged: list[tuple[Presentation, Outcome]], profile: str
) -> list[tuple[Presentation, Outcome]]:
    crops = [p.data for p, _ in judged if p.kind == "crop" and "#" not in p.name]
    if not crops:
        return []
    context = float(np.median([_context(engine, data) for data in crops]))
    found = []
    for p, _ in [(p, o) for p, o in judged if p.kind == "frame"]:
        data = fit_score_maps.cut_face(p.data, engine, context)
        outcome = judge(engine, data, profile)
        if outcome.judged and outcome.capture == "crop":
            cut = Presentation(p.name + fit_score_maps.CUT_MARK, p.source, p.label, KINDS[2], data)
            found.append((cut, outcome))
    return found


def _context(engine: LivenessEngine, data: bytes) -> float:
    image = engine.decode(data)
    face = engine.detect(image)
    height: int = image.shape[0]
    width: int = image.shape[1]
    return min((width - 1) / face.box[2], (height - 1) / face.box[3])


def shifted(
    engine: LivenessEngine,
    judged: list[tuple[Presentation, Outcome]],
    transforms: dict[str, Transform],
    profile: str,
) -> dict[str, list[Outcome]]:
    """Each transform's outcome of every judged presentation, in order."""
    decoded = [engine.decode(p.data) for p, _ in judged]
    return {
        name: [
            judge(engine, change(image, p.name), profile)
            for (p, _), image in zip(judged, decoded, strict=True)
        ]
        for name, change in transforms.items()
    }


def _interval(deltas: np.ndarray, sources: np.ndarray) -> tuple[float, float] | None:
    """95 % interval of the mean change over a bootstrap of whole sources; None with fewer
    sources than ``ml.pad_metrics.MIN_GROUPS`` (a percentile needs more distinct resamples)."""
    if np.unique(sources).size < pad_metrics.MIN_GROUPS:
        return None
    found = pad_metrics.group_bootstrap(sources, lambda idx: {"mean": float(deltas[idx].mean())})
    return found["mean"]


def cell(pairs: list[tuple[Presentation, Outcome, Outcome]]) -> dict[str, Any]:
    """The figures of one transform, kind and class: ``pairs`` = (presentation, before,
    after) for every presentation of that kind and class."""
    kept = [(p, b, a) for p, b, a in pairs if a.judged]
    refused: dict[str, int] = {}
    for _, _, a in pairs:
        if not a.judged:
            refused[a.refusal] = refused.get(a.refusal, 0) + 1
    deltas = np.asarray([a.z - b.z for _, b, a in kept], np.float64)
    sources = np.asarray([p.source for p, _, _ in kept], dtype=object).astype(str)
    flips = sum((b.p >= THRESHOLD) != (a.p >= THRESHOLD) for _, b, a in kept)
    sharp = [a.sharpness / b.sharpness for _, b, a in kept if b.sharpness > 0]
    return {
        "n": len(pairs),
        "judged": len(kept),
        "refused": sum(refused.values()),
        "refusals": refused,
        "kind_changed": sum(a.capture != b.capture for _, b, a in kept),
        "sources": int(np.unique(sources).size),
        "mean": float(deltas.mean()) if kept else math.nan,
        "median": float(np.median(deltas)) if kept else math.nan,
        "interval": _interval(deltas, sources) if kept else None,
        "flipped": flips / len(kept) if kept else math.nan,
        "sharpness_ratio": float(np.median(sharp)) if sharp else math.nan,
    }


def _auc(pairs: list[tuple[Presentation, Outcome, Outcome]], after: bool) -> float:
    kept = [(p, a if after else b) for p, b, a in pairs if a.judged]
    live = np.asarray([o.z for p, o in kept if p.label == "live"])
    spoof = np.asarray([o.z for p, o in kept if p.label == "spoof"])
    return pad_metrics.auc(live, spoof)


def table(
    judged: list[tuple[Presentation, Outcome]], outcomes: dict[str, list[Outcome]]
) -> list[dict[str, Any]]:
    """One row per transform, kind and class (AUC per transform and kind, on the
    presentations it left judged, before and after)."""
    rows = []
    for name, after in outcomes.items():
        triples = [(p, b, a) for (p, b), a in zip(judged, after, strict=True)]
        for kind in KINDS:
            mine = [t for t in triples if t[0].kind == kind]
            auc = (_auc(mine, after=False), _auc(mine, after=True))
            for label in LABELS:
                chosen = [t for t in mine if t[0].label == label]
                if chosen:
                    row = {"transform": name, "kind": kind, "label": label}
                    rows.append(row | cell(chosen) | {"auc_before": auc[0], "auc_after": auc[1]})
    return rows


def spread(judged: list[tuple[Presentation, Outcome]]) -> list[dict[str, Any]]:
    """Per kind and class: each source's mean fused logit, untransformed, and their range:
    how far apart capture channels already sit."""
    rows = []
    for kind in KINDS:
        for label in LABELS:
            by_source: dict[str, list[float]] = {}
            for p, o in judged:
                if p.kind == kind and p.label == label:
                    by_source.setdefault(p.source, []).append(o.z)
            if by_source:
                means = {s: float(np.mean(z)) for s, z in sorted(by_source.items())}
                values = list(means.values())
                rows.append(
                    {
                        "kind": kind,
                        "label": label,
                        "sources": means,
                        "range": max(values) - min(values),
                        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                    }
                )
    return rows


def _num(value: float, digits: int = 2, sign: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'transform':<14}{'kind':<13}{'class':<6}{'n':>4}{'refused':>8}{'kind≠':>6}"
        f"{'mean dz':>9}{'median':>8}{'95% over sources':>19}{'flip':>6}{'sharp':>6}"
        f"{'AUC before->after':>19}"
    )
    lines = [header]
    for r in rows:
        interval = r["interval"]
        shown = f"[{interval[0]:+.2f}, {interval[1]:+.2f}]" if interval else "-"
        lines.append(
            f"{r['transform']:<14}{r['kind']:<13}{r['label']:<6}{r['n']:>4}{r['refused']:>8}"
            f"{r['kind_changed']:>6}{_num(r['mean']):>9}{_num(r['median']):>8}{shown:>19}"
            f"{_num(r['flipped'], sign=False):>6}{_num(r['sharpness_ratio'], sign=False):>6}"
            f"{_num(r['auc_before'], 3, False):>10}->{_num(r['auc_after'], 3, False):<7}"
        )
    return "\n".join(lines)


def format_spread(rows: list[dict[str, Any]]) -> str:
    lines = ["between-source spread of the untransformed fused logit (mean per source):"]
    for r in rows:
        means = ", ".join(f"{s.split('/')[0]} {z:+.2f}" for s, z in r["sources"].items())
        lines.append(
            f"  {r['kind']:<13}{r['label']:<6} range {r['range']:.2f}, sd {_num(r['sd'], 2, False)}"
            f" ({len(r['sources'])} sources: {means})"
        )
    return "\n".join(lines)


def run(
    engine: LivenessEngine,
    labelled: Sequence[tuple[str, str, str, bytes]],
    profile: str = DEFAULT_PROFILE,
    transforms: dict[str, Transform] | None = None,
    cuts: bool = True,
) -> dict[str, Any]:
    judged = presentations(engine, labelled, profile, cuts)
    outcomes = shifted(engine, judged, transforms or TRANSFORMS, profile)
    return {
        "profile": profile,
        "presentations": [asdict(o) | {"name": p.name, "kind": p.kind} for p, o in judged],
        "rows": table(judged, outcomes),
        "spread": spread(judged),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE)
    parser.add_argument("--dev", type=Path, default=fit_score_maps.DEV)
    parser.add_argument("--video", type=Path, default=fit_score_maps.VIDEO)
    parser.add_argument("--frames", type=int, default=fit_score_maps.FRAMES_PER_CLIP)
    parser.add_argument("--no-cuts", action="store_true", help="leave the app-cut crops out")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    engine = LivenessEngine.load(default_model_dir(), eager=[args.profile])
    labelled = _labelled(args.dev, args.video, args.frames)
    doc = run(engine, labelled, args.profile, cuts=not args.no_cuts)
    print(f"profile {args.profile}: {len(doc['presentations'])} judged presentations")
    print(format_table(doc["rows"]))
    print(format_spread(doc["spread"]))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
