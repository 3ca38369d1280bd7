#!/usr/bin/env python3
"""Django's command-line utility for administrative tasks."""

import os
import signal
import sys
from types import FrameType


def stopped(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM ends a command as an exit does: psycopg cancels a running query (it does so on
    SystemExit as on KeyboardInterrupt) and Django rolls back. Killed outright, a migrate
    waiting for the migration lock left its backend waiting (still there 3 s after the process
    died, until the lock was granted), holding a connection. A second SIGTERM kills at once."""
    signal.signal(signum, signal.SIG_DFL)
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, stopped)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facia_site.settings")
    # Commands (a migration, a purge) may rightly take long; the server's requests may not.
    os.environ.setdefault("DATABASE_TIMEOUT_S", "0")
    # Log records on stderr: stdout is the command's output (evaluate --json > report.json).
    os.environ["FACIA_COMMAND_LOGS"] = "stderr"
    from django.core.management import execute_from_command_line

    from facia_site.migrating import one_at_a_time
    from facia_site.startup import reported
    from facia_site.vardir import prepare

    with reported(sys.argv):  # a failure: one log record, its cause first
        # Settings create nothing; every command (migrate first on a fresh clone) sets up var/.
        prepare()
        with one_at_a_time(sys.argv):  # instances sharing a database migrate in turn
            execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
