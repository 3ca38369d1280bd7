from typing import Any

from django.apps import AppConfig
from django.core.signals import request_finished


def _forget_request_id(**kwargs: Any) -> None:
    from ops.logs import current_request_id

    current_request_id.set(None)


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        request_finished.connect(_forget_request_id, dispatch_uid="ops.forget_request_id")
