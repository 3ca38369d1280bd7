"""The per-process engine: loaded and warmed once (after fork under gunicorn), then shared."""

import logging
import threading

from django.conf import settings

from accounts.models import Tenant
from ml.engine import LivenessEngine
from ml.profiles import DEFAULT_PROFILE, PROFILES
from ml.quality import QualityThresholds

log = logging.getLogger(__name__)


class EngineUnavailable(RuntimeError):
    """The engine could not be loaded or warmed (models missing or broken); cause chained."""


class EngineHolder:
    """Holds this process's engine once it is loaded *and* warmed, never a half-ready one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: LivenessEngine | None = None

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def get(self) -> LivenessEngine:
        """The warm engine, loaded on first use; raises EngineUnavailable when it cannot be
        (and tries again on the next call). Gunicorn workers load it in post_fork instead."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = _load_and_warm()
        return self._engine


def _load_and_warm() -> LivenessEngine:
    log.info("loading liveness engine from %s", settings.MODEL_DIR)
    try:
        engine = load_engine()
        engine.warm_up()  # runs every model and every YuNet shape once
    except Exception as exc:
        raise EngineUnavailable(f"liveness engine unavailable: {exc}") from exc
    log.info("liveness engine warmed")
    return engine


def profiles_in_use() -> set[str]:
    """The default profile and those the tenants use: their models are compiled at start; a
    profile first chosen later compiles its own models on its first request (README,
    Profiles). Every profile when the database cannot say (down, not migrated, or not to be
    touched here, as in a test session's set-up)."""
    try:
        used = set(Tenant.objects.values_list("profile", flat=True).distinct())
    except Exception:  # noqa: BLE001 (any reason: the safe answer is every profile)
        log.warning("tenants' profiles unreadable; compiling every profile", exc_info=True)
        return set(PROFILES)
    return {DEFAULT_PROFILE} | (used & set(PROFILES))


def load_engine() -> LivenessEngine:
    """A new engine with this deployment's model directory, threads, quality thresholds and
    the profiles its tenants use."""
    thresholds = QualityThresholds.from_mapping(settings.LIVENESS_QUALITY)
    return LivenessEngine.load(
        settings.MODEL_DIR,
        threads=settings.ENGINE_THREADS,
        precision=settings.ENGINE_PRECISION,
        thresholds=thresholds,
        eager=profiles_in_use(),
    )


_holder = EngineHolder()


def get_engine() -> LivenessEngine:
    """This process's warm engine, loaded and warmed by the first call (gunicorn's post_fork,
    the test session's fixture, or else the first request); /status_check answers 200 once
    it is. EngineUnavailable when it cannot be."""
    return _holder.get()


def is_ready() -> bool:
    return _holder.ready
