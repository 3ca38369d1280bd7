import logging

from django.apps import AppConfig
from django.conf import settings

log = logging.getLogger("capture")


class CaptureConfig(AppConfig):
    name = "capture"
    verbose_name = "Capture sessions"

    def ready(self) -> None:
        steps = settings.CAPTURE_CHALLENGE_STEPS
        if steps:
            log.warning(
                "CAPTURE_CHALLENGE_STEPS is set: every head-turn challenge asks %s, in that "
                "order. For tests and demos only: a recorded clip can answer a known order.",
                ",".join(steps),
            )
