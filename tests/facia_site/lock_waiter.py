"""Wait on a lock through the settings' PostgreSQL connection (DATABASE_URL) until killed.

Used by tests/facia_site/test_postgresql_sessions.py in a subprocess, as a gunicorn worker whose
query waits when its timeout kills it. Prints its backend's pid and its
client_connection_check_interval, then reads the table ``held``, which the test holds locked.
"""

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid(), current_setting('client_connection_check_interval')"
        )
        pid, interval = cursor.fetchone()
        print(pid, interval, flush=True)
        cursor.execute("SELECT count(*) FROM held")


if __name__ == "__main__":
    main()
