from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Operator console"

    def ready(self) -> None:
        from console.collectors import QUOTAS, existing_tenants
        from telemetry.views import SCRAPED, keep_samples

        SCRAPED.register(QUOTAS)  # one instance, no names described: adding it again is a no-op
        keep_samples(existing_tenants)
