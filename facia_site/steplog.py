"""A set-up step of bin/entrypoint, run and logged: its output (stdout and stderr) as JSON
lines (telemetry.logline) unless LOG_FORMAT is text, as read by facia_site.env for Django and
gunicorn too; this process exits with the step's status (128+N when signal N killed it).

python -m facia_site.steplog NAME COMMAND [ARG...]

The first stop request that reaches this process is passed on to the step, which then ends
as it would on its own (manage.py: a running query cancelled, its transaction rolled back);
its output is still logged, and a last line says it was stopped. A stop request is TERM or
INT sent to this process, or USR1: bin/entrypoint's trap, saying the entrypoint was told to
stop (passed on as TERM). A step whose output sh captured itself would never see the signal:
as a container's PID 1, sh ignores even SIGTERM; elsewhere sh dies and the step runs on, an
orphan (e.g. waiting for the migration lock, its connection open).

The step has a process group of its own, so that a terminal's Ctrl-C, which this process
also receives, reaches it once: a second signal could cut short the cancelling of its query
(psycopg then only closes the connection, and a backend waiting for a lock goes on waiting).
One stop often reaches this process twice, though: a Ctrl-C as INT from the terminal, a
group signal (`kill -TERM -- -PGID`, GNU timeout) as TERM, each with USR1 from the
entrypoint's trap, arriving in either order and at any interval (over 100 ms apart on a
loaded host). The entrypoint's own signal being USR1, never TERM or INT, a repeat is a
signal number seen twice, whatever the time between: a second Ctrl-C (INT again), a second
group kill (TERM again) or a second `docker stop` (USR1 again), each passed on again (USR1
as TERM): the way out that the step offers for a second signal (manage.py migrate stops at
once: facia_site.migrating.HeldSignals).
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
ENTRYPOINT_STOPPING = signal.SIGUSR1  # bin/entrypoint's trap: the entrypoint was told to stop


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
    """A command as this process's child, told of the first stop request this process gets,
    and of each signal that comes again (see the module's docstring)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.received: int | None = None  # what the first stop request passes on
        self.seen: set[int] = set()  # the signal numbers received, USR1 included
        self.again: int | None = None  # one that came a second time, not yet passed on
        self.told = False

    def receive(self, signum: int, _frame: FrameType | None) -> None:
        passed = signal.SIGTERM if signum == ENTRYPOINT_STOPPING else signum
        if self.received is None:
            self.received = passed
        elif signum in self.seen:
            self.again = passed
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
        # Before it starts: its own dispositions are then the default.
        for signum in (*STOPPING, ENTRYPOINT_STOPPING):
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
