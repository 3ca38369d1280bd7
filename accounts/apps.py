from django.apps import AppConfig
from django.db.models.signals import post_delete


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Tenants and credentials"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401 (registers the profile check)
        from accounts.models import Tenant, forget_refusals
        from accounts.usernames import install

        install()  # every path that makes or renames an account meets one username rule
        post_delete.connect(forget_refusals, sender=Tenant, dispatch_uid="accounts.refusals")
