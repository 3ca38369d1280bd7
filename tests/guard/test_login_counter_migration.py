"""guard 0003 on a database filled before it: a login-account counter stored with the username
as typed holds its HMAC after the migration (the lockout it counts stays in force), the
overflow row and an address's row are left as they were; and it migrates back."""

import os
from pathlib import Path

import pytest

from tests.servers.processes import manage

TYPED = "Tr0ub4dor-3-typed-in-username"

FILL = f"""
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
old = MigrationExecutor(connection).loader.project_state([("guard", "0002_refusal")]).apps
Counter = old.get_model("guard", "Counter")
for scope, subject in (("login-account", "{TYPED}"), ("login-account", "*"),
                       ("login-ip", "192.0.2.1")):
    Counter.objects.create(scope=scope, subject=subject, bucket=1_764_700_200, hits=5)
"""

CHECK = f"""
from guard.login import account_subject
from guard.models import Counter
rows = Counter.objects.order_by("scope", "subject").values_list("scope", "subject", "hits")
print([(scope, subject == account_subject("{TYPED}") or subject, hits)
       for scope, subject, hits in rows])
"""


@pytest.mark.slow  # five manage.py processes
def test_a_username_stored_in_clear_becomes_its_hmac(tmp_path: Path) -> None:
    env = {**os.environ, "FACIA_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "migrate", "guard", "0002_refusal", "--noinput", "-v0")
    manage(env, "shell", "-c", FILL)
    manage(env, "migrate", "--noinput", "-v0")
    rows = manage(env, "shell", "-c", CHECK).splitlines()[-1]
    assert (
        rows
        == "[('login-account', '*', 5), ('login-account', True, 5), ('login-ip', '192.0.2.1', 5)]"
    )
    manage(env, "migrate", "guard", "0002_refusal", "--noinput", "-v0")  # and back
