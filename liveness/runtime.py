"""The per-process engine: loaded once (after fork under gunicorn), then shared by requests."""

import logging
import threading

from django.conf import settings

from ml.engine import LivenessEngine
from ml.quality import QualityThresholds

log = logging.getLogger(__name__)


class EngineHolder:
    """Loads the engine lazily and remembers whether it has been warmed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: LivenessEngine | None = None
        self._warm = False

    @property
    def ready(self) -> bool:
        return self._warm

    def get(self) -> LivenessEngine:
        """The loaded engine; raises ml.errors.ModelInstallError when models are missing."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    log.info("loading liveness engine from %s", settings.MODEL_DIR)
                    self._engine = load_engine()
        return self._engine

    def warm(self) -> LivenessEngine:
        engine = self.get()
        if not self._warm:
            with self._lock:
                if not self._warm:
                    engine.warm_up()
                    self._warm = True
                    log.info("liveness engine warmed")
        return engine


def load_engine() -> LivenessEngine:
    """A new engine with this deployment's model directory, threads and quality thresholds."""
    thresholds = QualityThresholds.from_mapping(settings.LIVENESS_QUALITY)
    return LivenessEngine.load(
        settings.MODEL_DIR,
        threads=settings.ENGINE_THREADS,
        precision=settings.ENGINE_PRECISION,
        thresholds=thresholds,
    )


_holder = EngineHolder()


def holder() -> EngineHolder:
    return _holder


def get_engine() -> LivenessEngine:
    return _holder.get()


def warm() -> LivenessEngine:
    """Load and warm this process's engine; /status_check answers 200 afterwards."""
    return _holder.warm()


def is_ready() -> bool:
    return _holder.ready
