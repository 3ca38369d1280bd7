"""A set-up step's output (stdin) as bin/entrypoint logs it: JSON lines (telemetry.logline)
unless LOG_FORMAT is text, as read by facia_site.env for Django and gunicorn too.

python -m facia_site.steplog NAME EXIT_STATUS < output
"""

import sys

from django.core.exceptions import ImproperlyConfigured

from facia_site.env import log_format
from telemetry import logline


def plain() -> bool:
    try:
        return log_format() == "text"
    except ImproperlyConfigured:
        return False  # JSON, as for any value but text; the step itself reports the setting


def main(name: str, status: str) -> None:
    if plain():
        sys.stdout.writelines(sys.stdin)
    else:
        logline.main(name, status)


if __name__ == "__main__":
    main(*sys.argv[1:3])
