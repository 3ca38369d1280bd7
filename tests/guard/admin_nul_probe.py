"""Admin list addresses whose query string holds a NUL, against DATABASE_URL; prints each
one's status as JSON. Run by tests/guard/test_admin_bad_input.py in a subprocess, so that a
PostgreSQL database gets its own Django set-up (the test database is SQLite)."""

import json
import os
import uuid

PAGES = (
    "/admin/accounts/tenant/?name=%00",
    "/admin/liveness/livenesscheck/?request_id=%00",
    "/admin/guard/refusal/?code=%00",
    "/admin/auth/user/?username=%00",
    "/admin/autocomplete/?app_label=accounts&model_name=hashid&field_name=tenant&term=%00",
    "/admin/accounts/tenant/",
)


def probe() -> dict[str, object]:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    user = User.objects.create_superuser(f"root-{uuid.uuid4().hex[:8]}", password=None)
    client = Client(raise_request_exception=False, HTTP_HOST="localhost")
    client.force_login(user)
    return {
        "vendor": connection.vendor,
        "statuses": {page: client.get(page).status_code for page in PAGES},
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    print(json.dumps(probe()))


if __name__ == "__main__":
    main()
