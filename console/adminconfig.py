"""Django's admin app with the console's site as ``admin.site`` (INSTALLED_APPS names this
instead of ``django.contrib.admin``). No model is imported here: the class is read before the
models load."""

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "console.sites.ConsoleSite"
