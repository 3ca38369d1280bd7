from django.apps import AppConfig


class GuardConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "guard"
    verbose_name = "Abuse guards"

    def ready(self) -> None:
        from django.contrib import admin

        from guard.forms import ThrottledAdminLoginForm

        admin.site.login_form = ThrottledAdminLoginForm
