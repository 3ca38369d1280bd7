"""Turn a set-up step's plain output (stdin) into JSON log lines: what
``python -m facia_site.steplog`` (bin/entrypoint's ``logged``) writes unless LOG_FORMAT is text.
"""

import json
import logging
import sys

from telemetry.logs import JsonFormatter


def already_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def main(name: str, status: str) -> None:
    level = logging.INFO if status == "0" else logging.ERROR
    formatter = JsonFormatter()
    for line in sys.stdin:
        if not line.strip():
            continue
        if already_json(line):
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
        else:
            record = logging.LogRecord(name, level, __file__, 0, line.rstrip("\n"), None, None)
            record.request_id = None
            sys.stdout.write(formatter.format(record) + "\n")
