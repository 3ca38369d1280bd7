from django.apps import AppConfig


class GuardConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "guard"
    verbose_name = "Abuse guards"

    def ready(self) -> None:
        from django.contrib import admin
        from django.contrib.auth.signals import user_logged_in

        from guard.deletion import delete_selected
        from guard.forms import ThrottledAdminLoginForm
        from guard.sessions import on_login

        admin.site.login_form = ThrottledAdminLoginForm
        # Every list's "Delete selected" counts what it deletes (Django's listed each row).
        admin.site.add_action(delete_selected)
        user_logged_in.connect(on_login, dispatch_uid="guard.sessions.on_login")
