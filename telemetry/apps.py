from typing import Any

from django.apps import AppConfig
from django.core.signals import request_finished


def _forget_request_id(**kwargs: Any) -> None:
    from telemetry.logs import current_request_id

    current_request_id.set(None)


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry"

    def ready(self) -> None:
        request_finished.connect(_forget_request_id, dispatch_uid="telemetry.forget_request_id")
