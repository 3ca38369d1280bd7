"""A set-up step of bin/entrypoint, run and logged: its output (stdout and stderr) as JSON
lines (telemetry.logline) unless LOG_FORMAT is text, as read by facia_site.env for Django and
gunicorn too; this process exits with the step's status (128+N when signal N killed it).

python -m facia_site.steplog NAME COMMAND [ARG...]

The first TERM or INT that reaches this process is passed on to the step, which then ends as
it would on its own (manage.py: a running query cancelled, its transaction rolled back); its
output is still logged, and a last line says it was stopped. A step whose output sh captured
itself would never see the signal: as a container's PID 1, sh ignores even SIGTERM; elsewhere
sh dies and the step runs on, an orphan (e.g. waiting for the migration lock, its connection
open).

The step has a process group of its own, so that a terminal's Ctrl-C, which this process
also receives, reaches it once: a second signal could cut short the cancelling of its query
(psycopg then only closes the connection, and a backend waiting for a lock goes on waiting).
One Ctrl-C reaches this process twice, though: as SIGINT from the terminal and as SIGTERM
from bin/entrypoint's trap. So a signal is passed on again only when it comes a second time
(a second Ctrl-C, a second `docker stop` or `kill`): the way out that the step offers for
a second signal (manage.py migrate stops at once: facia_site.migrating.HeldSignals).
"""

import contextlib
import io
import os
import signal
import subprocess
import sys
from types import FrameType

from django.core.exceptions import ImproperlyConfigured

from facia_site.env import log_format
from telemetry import logline

STOPPING = (signal.SIGTERM, signal.SIGINT)


def plain() -> bool:
    try:
        return log_format() == "text"
    except ImproperlyConfigured:
        return False  # JSON, as for any value but text; the step itself reports the setting


def log(name: str, status: int, text: str) -> None:
    if plain():
        sys.stdout.write(text)
    else:  # lines split as the standard input that logline reads splits them
        logline.write(name, str(status), io.StringIO(text, newline=None), sys.stdout)


class Step:
    """A command as this process's child, told of the first TERM or INT this process gets,
    and of each that comes again (see the module's docstring)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.received: int | None = None  # the first TERM or INT
        self.seen: set[int] = set()
        self.again: int | None = None  # one that came a second time, not yet passed on
        self.told = False

    def receive(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        elif signum in self.seen:
            self.again = signum
        self.seen.add(signum)
        self.tell()

    def tell(self) -> None:
        if self.received is None or self.child is None:
            return
        passed_on = [] if self.told else [self.received]
        self.told = True
        if self.again is not None:
            passed_on.append(self.again)
            self.again = None
        for signum in passed_on:
            # Its group: what it started too, as a terminal's Ctrl-C would. None left: ended.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child.pid, signum)

    def run(self, argv: list[str]) -> tuple[int, str]:
        """The command's exit status and output."""
        for signum in STOPPING:  # before it starts: its own dispositions are then the default
            signal.signal(signum, self.receive)
        try:
            self.child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,  # a background group reading the terminal would stop
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        except OSError as exc:  # the statuses sh gives
            status = 126 if isinstance(exc, PermissionError) else 127
            return status, f"{argv[0]}: {exc.strerror}\n"
        self.tell()  # a signal that came while it was starting
        output = self.child.communicate()[0]
        code = self.child.returncode
        return (code if code >= 0 else 128 - code), output.decode(errors="replace")


def main(name: str, argv: list[str]) -> int:
    step = Step()
    status, output = step.run(argv)
    text = output.rstrip("\n")  # what sh's $(...) kept
    if text:
        text += "\n"
    if step.told and step.received is not None and status != 0:
        text += f"{name}: stopped by {signal.Signals(step.received).name}\n"
    if text:
        log(name, status, text)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
