from django.apps import AppConfig
from django.core.signals import request_finished


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry"

    def ready(self) -> None:
        from telemetry.middleware import forget_request_id

        request_finished.connect(forget_request_id, dispatch_uid="telemetry.forget_request_id")
