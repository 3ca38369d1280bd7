from django.apps import AppConfig


class LivenessConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "liveness"

    def ready(self) -> None:
        from liveness.runtime import not_ready_reason
        from telemetry.views import on_scrape

        on_scrape(not_ready_reason)  # /metrics shows this worker's readiness gauge, fresh
