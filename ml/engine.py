"""The liveness pipeline: decode -> detect -> quality gates -> the profile's classifiers ->
fused logit -> P(live).

A large JPEG is decoded reduced (ml.decode); when its face fails face_too_small only because
of the reduction, it is decoded again finer and detected and gated there (``_gated``), so a
frame gets the gates and score of its pixels whatever the container.

One engine per process (compiled after fork in gunicorn), one image at a time; one inference
thread per model, and the profile's heaviest model (ml.registry ``background``) runs on
OpenVINO's own thread beside the others, so an idle second core shortens a request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import openvino as ov

from ml import profiles, quality
from ml.classifier import BackgroundModel, LivenessModel
from ml.compilation import (
    choose_precision,
    compile_model,
    cpu_flags,
    cpu_has_bf16,
    describe_cpu,
    make_core,
)
from ml.decode import ANY_CAMERA, Frame, Limits, decode_frame, decode_image
from ml.errors import ImageError, ModelFault, ModelInstallError, ModelUnavailable
from ml.install import installed_faults
from ml.profiles import (
    DEFAULT_PROFILE,
    PROFILES,
    Profile,
    fused_logit,
    models_of,
)
from ml.quality import QualityMeasures, QualityThresholds
from ml.quantize import INT8_DIR, QUANTIZED, int8_faults, int8_ready
from ml.registry import CLASSIFIERS, DETECTOR
from ml.yunet import INPUT_SHAPES, Face, YuNet, int_box, largest

FACE_SCORE_FLOOR = 0.6
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    p_live: float
    box: tuple[int, int, int, int]
    face_score: float
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    profile: str = DEFAULT_PROFILE
    scores: dict[str, float] = field(default_factory=dict, compare=False)  # per model
    capture: str = "frame"  # "frame" (full camera frame) or "crop" (the face fills it)
    logit: float = 0.0  # the fused logit; p_live is the shipped map of it for this capture


@dataclass(frozen=True)
class Fused:
    """A check's verdict over one frame or a burst of frames."""

    logit: float
    p_live: float
    capture: str
    frames: int
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)


def fuse(verdicts: list[Verdict]) -> Fused:
    """A burst's verdict: the mean of the frames' fused logits (like the profile fusion of
    models), so one confident frame is not averaged away by unsure ones; "frame" only when
    every frame was a full camera frame. One frame's is its own, with its stage timings."""
    z = math.fsum(v.logit for v in verdicts) / len(verdicts)
    capture = "frame" if all(v.capture == "frame" for v in verdicts) else "crop"
    timings = verdicts[0].timings_ms if len(verdicts) == 1 else {}
    p_live = profiles.shipped(verdicts[0].profile, capture).p(z)
    return Fused(z, p_live, capture, len(verdicts), timings)


@dataclass(frozen=True)
class Gates:
    """What the quality gates decide for one image under a crop policy."""

    face: Face | None  # the main face (ml.yunet.largest)
    measures: QualityMeasures | None  # None without a face
    failures: list[str]  # every gate failed, in reporting order; ["no_face"] without a face
    capture: str = ""  # "frame" or "crop"; empty without a face

    def passed(self) -> tuple[Face, str]:
        """The face to judge and its capture kind, or FaceRefused with the first gate failed."""
        if self.face is None or self.failures:
            raise quality.refusal(self.failures[0])
        return self.face, self.capture


def gates_of(
    image: np.ndarray, faces: list[Face], thresholds: QualityThresholds, crop_policy: str
) -> Gates:
    """The one sequence of the quality gates (the main face, its measures, the gates failed,
    the capture kind): the verdict, evaluation, a session's quality call and the head-turn
    benchmark all decide through it (LivenessEngine.gates)."""
    face = largest(faces)
    if face is None:
        return Gates(None, None, ["no_face"])
    measures = quality.measure(image, face, faces)
    failed = quality.failures(measures, thresholds, crop_policy)
    return Gates(face, measures, failed, quality.capture_of(measures, thresholds))


def finer_scale(frame: Frame, gates: Gates, min_face_px: float) -> int | None:
    """The reduction to decode ``frame`` again at when its main face failed face_too_small only
    because the JPEG was decoded reduced: the coarsest of ``frame.finer_scales()`` at which the
    face, as measured, has ``min_face_px`` (the same frame sent as PNG is decoded whole). None
    for any other image: a face that passed, or would be too small even whole, or a frame
    decoded whole or from no file. Only such a face pays for a second decode."""
    if gates.measures is None or "face_too_small" not in gates.failures:
        return None
    in_frame = gates.measures.face_px * frame.scale  # the face's side in the frame's pixels
    return next((f for f in frame.finer_scales() if in_frame / f >= min_face_px), None)


def as_frame(image: np.ndarray | Frame) -> Frame:
    """A decoded image as a Frame of its own (no finer decode), a Frame as it is."""
    return image if isinstance(image, Frame) else Frame.whole(image)


@dataclass(frozen=True)
class Inspection:
    """Everything the engine knows about one image, gates or not (for evaluation)."""

    face: Face | None
    measures: QualityMeasures | None
    failures: list[str]  # every gate failed under the crop policy; ["no_face"] without a face
    scores: dict[str, float]  # each model's P(live); empty without a face
    capture: str = ""  # "frame" or "crop"; empty without a face

    def logit(self, profile: str) -> float:
        return fused_logit(self.scores, PROFILES[profile].weights(self.capture))


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = (time.perf_counter() - start) * 1000


class LivenessEngine:
    def __init__(
        self,
        detector: YuNet,
        models: dict[str, LivenessModel],
        thresholds: QualityThresholds | None = None,
        profiles: dict[str, Profile] | None = None,
        background: Collection[str] = (),
        pending: Mapping[str, Callable[[], LivenessModel]] | None = None,
    ) -> None:
        """``background``: the models that run on OpenVINO's thread (``BackgroundModel``s, see
        ml.registry); ``pending``: models built on first use, by name (``load``'s ``eager``)."""
        self.detector = detector
        self.models = models
        self.background = frozenset(background)
        self.pending = dict(pending or {})
        self.thresholds = thresholds or QualityThresholds()
        self.profiles = profiles or PROFILES
        self.precision = "f32"  # what load() compiled at (ENGINE_PRECISION=auto resolved)
        # One image at a time: each model has one inference request (a threaded dev server
        # would otherwise submit to a busy one).
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: Path,
        threads: int = 1,
        precision: str = "f32",
        thresholds: QualityThresholds | None = None,
        eager: Collection[str] | None = None,
    ) -> LivenessEngine:
        """``precision`` applies to every model; a model whose spec asks for bf16 (DTN) gets
        it anyway where the CPU has it (docs, Accuracy, Profiles). "int8" runs the NNCF-quantised
        variants of ``ml.quantize.QUANTIZED`` from ``MODEL_DIR/int8`` (the other layers and
        models in f32) and needs them built (``python -m bench.quantize --build``).
        ``eager``: the profiles whose models are compiled now (default: every profile); a
        model only the others use is compiled on the first image that needs it (DTN, for
        ``thorough`` alone: 33 MB per worker and ~0.2 s once)."""
        model_dir = Path(model_dir)
        # Every worker hashes what it is about to compile (13 ms of a 1.1 s start, python -m
        # bench.model_digests): a model changed since install would otherwise be served, as
        # NaN scores.
        faults = installed_faults(model_dir)
        if faults:
            raise ModelInstallError(
                f"models are not installed in {model_dir} ({'; '.join(faults)}); "
                "run `manage.py install_models`"
            )
        cv2.setNumThreads(1)  # decode/resize run on the request's own thread
        core = make_core(model_dir / "cache")
        flags = cpu_flags()
        precision, why = choose_precision(precision, cpu_has_bf16(core), flags)
        log.info("engine precision %s (%s; %s)", precision, why, describe_cpu(flags))
        if precision == "int8" and not int8_ready(model_dir):
            found = int8_faults(model_dir)
            what = f"unusable INT8 models ({'; '.join(found)})" if found else "no INT8 models"
            raise ModelInstallError(
                f"ENGINE_PRECISION=int8 but {what} in {model_dir / INT8_DIR}; "
                "build them with `python -m bench.quantize --build`"
            )

        def compiled(
            name: str, shape: tuple[int, int] | None = None, at: str = precision
        ) -> ov.CompiledModel:
            path = model_dir / f"{name}.xml"
            if at == "int8":  # quantised layers run in int8 whatever the hint; the rest in f32
                path, at = (model_dir / INT8_DIR / f"{name}.xml", "f32")
            return compile_model(core, path, threads, shape, at)

        detector = YuNet(
            {shape: compiled(DETECTOR.ir, shape) for shape in INPUT_SHAPES},
            score_threshold=FACE_SCORE_FLOOR,
        )

        def build(name: str) -> LivenessModel:
            spec = CLASSIFIERS[name]
            assert spec.build is not None, name  # every classifier's spec says how to build it
            chosen = "bf16" if "bf16" in (precision, spec.precision) else "f32"
            if precision == "int8" and name in QUANTIZED:
                chosen = "int8"
            return spec.build(compiled(spec.ir, at=chosen))

        now = set(models_of({p: PROFILES[p] for p in (PROFILES if eager is None else eager)}))
        names = models_of(PROFILES)
        models = {name: build(name) for name in names if name in now}
        pending = {name: partial(build, name) for name in names if name not in now}
        background = [name for name in names if CLASSIFIERS[name].background]
        engine = cls(detector, models, thresholds, background=background, pending=pending)
        engine.precision = precision
        return engine

    def decode(self, data: bytes, limits: Limits = ANY_CAMERA) -> np.ndarray:
        return decode_image(data, limits=limits)

    def decode_frame(self, data: bytes, limits: Limits = ANY_CAMERA) -> Frame:
        """``decode``'s image, with the frame's own size and the scale from the image's pixels
        to the frame's (a large JPEG is decoded reduced): for what is reported in pixels."""
        return decode_frame(data, limits=limits)

    def faces(self, image: np.ndarray) -> list[Face]:
        """Every face YuNet finds, best first (the engine's lock held: one image at a time)."""
        with self._lock:
            return self.detector.detect(image)

    def detect(self, image: np.ndarray) -> Face:
        face = largest(self.faces(image))
        if face is None:
            # A new exception each time: re-raising one shared instance chains every
            # raise's frames onto its traceback, keeping each request's image alive.
            raise quality.refusal("no_face")
        return face

    def gates(self, image: np.ndarray, faces: list[Face], crop_policy: str = "judge") -> Gates:
        """What the quality gates decide for ``image`` and the ``faces`` detected in it under
        ``crop_policy`` ("judge" or "refuse"): the one sequence of the verdict, evaluation and
        a capture session's quality call."""
        return gates_of(image, faces, self.thresholds, crop_policy)

    def gated(self, frame: Frame, crop_policy: str = "judge") -> tuple[Frame, list[Face], Gates]:
        """Faces and gates of ``frame`` under ``crop_policy``, from a finer decode when its
        reduced one left the face too small (``_gated``): the frame judged, its faces, its
        gates (the engine's lock held)."""
        with self._lock:
            return self._gated(frame, crop_policy)

    def _gated(self, frame: Frame, crop_policy: str) -> tuple[Frame, list[Face], Gates]:
        """Detect and gate ``frame``; while its face is too small only for the JPEG's reduced
        decode (``finer_scale``), decode the file again finer and detect and gate that. Every
        other image is decoded, detected and gated once, as before. A finer decode the decoder
        refuses leaves the coarser one's answer.

        ``no_face`` is not decoded again: YuNet sees every image scaled to 320 px on its longer
        side, so a finer decode shows it the same face at the same size. Of 2,126 dev faces
        placed in 2000x1500 to 6000x4000 JPEGs (python -m bench.no_face_decode), 1,368 were
        no_face at the reduced decode and 1,365 whole: 5 found only whole, 2 only reduced, each
        at YuNet's 0.6 floor (0.600 to 0.635). Decoding a face-free 4000x3000 JPEG again whole
        would add 180 ms to its 51."""
        faces = self.detector.detect(frame.image)
        gates = self.gates(frame.image, faces, crop_policy)
        while (scale := finer_scale(frame, gates, self.thresholds.min_face_px)) is not None:
            try:
                frame = frame.finer(scale)
            except ImageError as exc:
                log.warning("a finer decode (1/%d) failed, judged as decoded: %s", scale, exc)
                break
            faces = self.detector.detect(frame.image)
            gates = self.gates(frame.image, faces, crop_policy)
        return frame, faces, gates

    def score(
        self, image: np.ndarray, box: tuple[int, int, int, int], names: list[str]
    ) -> dict[str, float]:
        """Each model's P(live). Background models start first and run on OpenVINO's thread
        while this one runs the rest, so an idle second core shortens the request."""
        models = {name: self.model(name) for name in names}
        later = [name for name in names if name in self.background]
        started: list[BackgroundModel] = []
        try:
            for name in later:
                model = cast(BackgroundModel, models[name])
                model.start(image, box)
                started.append(model)
            scores = {n: models[n].p_live(image, box) for n in names if n not in self.background}
        finally:  # every submitted inference is collected, so no request is left busy
            results = [model.result() for model in started]
        scores.update(zip(later, results, strict=True))
        broken = [name for name in names if not math.isfinite(scores[name])]
        if broken:  # NaN would become the answer's score (and invalid JSON), a unit and a row
            raise ModelFault(f"model {', '.join(broken)} gave a non-finite score")
        return {name: scores[name] for name in names}

    def model(self, name: str) -> LivenessModel:
        """The model ``name``, built now if it was left for its first use (``load``'s
        ``eager``); ModelUnavailable when it cannot be (tried again next time)."""
        if name not in self.models and name in self.pending:
            log.info("compiling %s on its first use", name)
            try:
                self.models[name] = self.pending[name]()
            except Exception as exc:
                raise ModelUnavailable(f"model {name} could not be compiled: {exc}") from exc
            del self.pending[name]
        return self.models[name]

    @property
    def names(self) -> list[str]:
        """Every model this engine can run, compiled or left for its first use."""
        return [*self.models, *self.pending]

    def analyse(
        self,
        image: np.ndarray | Frame,
        profile: str = DEFAULT_PROFILE,
        crop_policy: str = "judge",
    ) -> Verdict:
        """The verdict of one image; a Frame (``decode_frame``) may be decoded again finer for
        the gates (``_gated``), a bare image is judged as it is."""
        chosen = self.profiles[profile]  # KeyError for an unknown profile: a caller's bug
        with self._lock:
            return self._analyse(as_frame(image), chosen, profile, crop_policy)

    def _analyse(self, frame: Frame, chosen: Profile, profile: str, crop_policy: str) -> Verdict:
        timings: dict[str, float] = {}
        with _timed(timings, "detect"):  # a finer decode, when one is needed, included
            frame, _, gates = self._gated(frame, crop_policy)
            face, capture = gates.passed()
        return self._judge(frame.image, face, capture, chosen, profile, timings)

    def _judge(
        self,
        image: np.ndarray,
        face: Face,
        capture: str,
        chosen: Profile,
        profile: str,
        timings: dict[str, float],
    ) -> Verdict:
        box = int_box(face)
        with _timed(timings, "classify"):
            scores = self.score(image, box, chosen.models)
        z = fused_logit(scores, chosen.weights(capture))
        p_live = profiles.shipped(profile, capture).p(z)
        return Verdict(p_live, box, face.score, timings, profile, scores, capture, z)

    def analyse_burst(
        self,
        images: Sequence[np.ndarray | Frame],
        profile: str = DEFAULT_PROFILE,
        crop_policy: str = "judge",
    ) -> list[Verdict]:
        """One verdict per frame, but no classifier runs until every frame has passed the gates
        (FaceRefused with the first refusal): a refused burst costs its detections only."""
        chosen = self.profiles[profile]
        with self._lock:
            passed = []
            for image in images:
                frame, _, gates = self._gated(as_frame(image), crop_policy)
                passed.append((frame.image, *gates.passed()))
            return [
                self._judge(image, face, capture, chosen, profile, {})
                for image, face, capture in passed
            ]

    def judge(
        self,
        images: Sequence[np.ndarray | Frame],
        profile: str = DEFAULT_PROFILE,
        crop_policy: str = "judge",
    ) -> Fused:
        """The verdict of a check of one frame or a burst (``analyse_burst``), fused."""
        if len(images) == 1:
            return fuse([self.analyse(images[0], profile, crop_policy)])
        return fuse(self.analyse_burst(images, profile, crop_policy))

    def inspect(
        self,
        image: np.ndarray | Frame,
        crop_policy: str = "judge",
        profiles: Collection[str] | None = None,
    ) -> Inspection:
        """Gates (under ``crop_policy``) and the score of every model of ``profiles`` (None:
        every model), without refusing: what evaluation and calibration need. A model of no
        profile asked for is neither run nor compiled (DTN: ~40 ms an image)."""
        names = self.names if profiles is None else self.models_for(profiles)
        with self._lock:
            return self._inspect(as_frame(image), crop_policy, names)

    def models_for(self, profiles: Collection[str]) -> list[str]:
        """The models ``profiles`` use (KeyError for an unknown profile)."""
        return models_of({name: self.profiles[name] for name in profiles})

    def _inspect(self, frame: Frame, crop_policy: str, names: list[str]) -> Inspection:
        frame, _, gates = self._gated(frame, crop_policy)
        if gates.face is None:
            return Inspection(None, None, gates.failures, {})
        scores = self.score(frame.image, int_box(gates.face), names)
        return Inspection(gates.face, gates.measures, gates.failures, scores, gates.capture)

    def check(
        self, data: bytes, profile: str = DEFAULT_PROFILE, crop_policy: str = "judge"
    ) -> Verdict:
        """Bytes in, verdict out (decode timing included)."""
        start = time.perf_counter()
        frame = self.decode_frame(data)
        decode_ms = (time.perf_counter() - start) * 1000
        verdict = self.analyse(frame, profile, crop_policy)
        verdict.timings_ms["decode"] = decode_ms
        return verdict

    def warm_up(self) -> None:
        """Run every compiled model once so the first request does not pay for lazy
        initialisation (a model left for its first use is warmed by that use); ModelFault
        when one gives a non-finite output, so a broken model never serves."""
        image = np.full((480, 640, 3), 128, np.uint8)
        with self._lock:
            for height, width in self.detector.requests:
                self.detector.detect(cv2.resize(image, (width, height)))
                if not self.detector.outputs_finite((height, width)):
                    raise ModelFault(
                        f"the face detector gave non-finite outputs at {height}x{width}"
                    )
            # every model, the background ones through their own thread too
            self.score(image, (270, 190, 100, 100), list(self.models))
