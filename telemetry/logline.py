"""Turn a setup step's plain output (stdin) into JSON log lines, for bin/entrypoint.

python -m telemetry.logline NAME EXIT_STATUS < output   (bin/entrypoint goes through
facia_site.steplog, which runs the step and honours LOG_FORMAT=text)
"""

import json
import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from telemetry.logs import JsonFormatter


def already_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def write(name: str, status: str, lines: Iterable[str], out: TextIO) -> None:
    """Each line of a step that exited with ``status`` as a JSON record (as it is if it is one)."""
    level = logging.INFO if status == "0" else logging.ERROR
    formatter = JsonFormatter()
    for line in lines:
        if not line.strip():
            continue
        if already_json(line):
            out.write(line if line.endswith("\n") else line + "\n")
        else:
            record = logging.LogRecord(name, level, __file__, 0, line.rstrip("\n"), None, None)
            record.request_id = None
            out.write(formatter.format(record) + "\n")


def main(name: str, status: str) -> None:
    write(name, status, sys.stdin, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:3])
