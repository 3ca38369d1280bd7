"""Turn a set-up step's plain output into JSON log lines: what ``python -m facia_site.steplog``
(bin/entrypoint's ``logged``) writes unless LOG_FORMAT is text.
"""

import json
import logging
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
