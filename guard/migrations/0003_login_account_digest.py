"""The login-account counters stored before ``guard.login.account_subject`` held the username
as typed (a password, when typed there): each is rewritten as that HMAC, so that a lockout in
force stays in force and nothing typed stays in clear until its window expires. Back, the
digests stay (the old code never matches them: at most two windows, 30 minutes, unlocked)."""

import unicodedata
from typing import Any

from django.db import migrations
from django.utils.crypto import salted_hmac

# As guard.models.ACCOUNT_SCOPE, guard.login.ACCOUNT_KEY_SALT and guard.throttle.OVERFLOW when
# this was written.
SCOPE = "login-account"
SALT = "guard.login.account"
OVERFLOW = "*"


def digest_subjects(apps: Any, schema_editor: Any) -> None:
    Counter = apps.get_model("guard", "Counter")
    for counter in Counter.objects.filter(scope=SCOPE).exclude(subject=OVERFLOW):
        name = unicodedata.normalize("NFKC", counter.subject)
        counter.subject = salted_hmac(SALT, name, algorithm="sha256").hexdigest()
        counter.save(update_fields=["subject"])


class Migration(migrations.Migration):
    dependencies = [("guard", "0002_refusal")]

    operations = [migrations.RunPython(digest_subjects, migrations.RunPython.noop)]
