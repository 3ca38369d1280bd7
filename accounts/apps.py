from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Tenants and credentials"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401 (registers the profile check)
        from accounts.usernames import install

        install()  # every path that makes or renames an account meets one username rule
