"""Turn a setup step's plain output (stdin) into JSON log lines, for bin/entrypoint.

python -m telemetry.logline NAME EXIT_STATUS < output   (bin/entrypoint goes through
facia_site.steplog, which honours LOG_FORMAT=text)
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


if __name__ == "__main__":
    main(*sys.argv[1:3])
