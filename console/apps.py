from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Operator console"

    def ready(self) -> None:
        from console.collectors import QUOTAS, current_tenants
        from telemetry.views import SCRAPED, relabel_samples

        SCRAPED.register(QUOTAS)  # one instance, no names described: adding it again is a no-op
        relabel_samples(current_tenants)
