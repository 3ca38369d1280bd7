"""``python -m facia_site.serve``: gunicorn with facia_site/gunicorn.conf.py, as bin/entrypoint
starts it. gunicorn reads WEB_CONCURRENCY itself, with a bare ``int()`` when it is imported,
before any config file: WEB_CONCURRENCY=two is a 16-line traceback there, and
FORWARDED_ALLOW_IPS=bogus a line naming no variable; so both are checked here first, and
reported as every other setting is (facia_site.startup).
"""

import math
import os
import resource
import signal
import sys
from pathlib import Path

from facia_site.env import env_forwarded_allow_ips, env_int_or_default
from facia_site.startup import failing_as

CONFIG = "facia_site/gunicorn.conf.py"


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 quota (containers)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


# Each HTTP worker holds its own engine (~280 MB): 1,024 of them is past any host, and a typo
# far beyond (10**20) had gunicorn fork until memory ran out.
MAX_WORKERS = 1024


def http_workers() -> int:
    """WEB_CONCURRENCY (WORKERS, its older name), at least 1: gunicorn took 0 and listened
    with no worker, every connection held unanswered."""
    name = "WORKERS" if not os.environ.get("WEB_CONCURRENCY", "").strip() else "WEB_CONCURRENCY"
    return env_int_or_default(name, available_cpus(), minimum=1, maximum=MAX_WORKERS)


# The signals that stop the server. Blocked from here until gunicorn's master has its own
# handlers (gunicorn.conf.py's when_ready unblocks them): the exec resets bin/entrypoint's trap,
# and the image runs it as PID 1, for which the kernel drops a signal left at its default
# action; a SIGTERM in that second (3 of 8 sent 1.8-2.0 s after a start) was lost, and
# `docker stop` or a pod's deletion waited out its grace period to SIGKILL. Blocked, it waits
# pending for the master's handler: a graceful stop.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def no_core_dumps() -> None:
    """No core file from this process or any it starts (the limit is inherited, across exec
    too): a crashed worker's memory holds raw hash_ids and selfies, and an HTTP worker's core
    file was 480 MB of them, written to its working directory. Hard limit too, so nothing
    later raises it. Not PR_SET_DUMPABLE 0: that also makes /proc/PID/maps, fd, environ...
    unreadable to the same user and stops py-spy and gdb attaching, and a root attacker can
    read the memory anyway. A core_pattern that pipes to a program (systemd-coredump,
    apport) is not bound by the limit in the kernel, but is handed it (%c) and honours 0
    ("Resource limits disable core dumping"). docs/operator/security.md, Core dumps."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    """Check, then become ``python -m gunicorn`` (exec): the process gunicorn expects, which it
    can re-exec itself on SIGUSR2."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the mask survives the exec
    no_core_dumps()  # so does the limit (gunicorn.conf.py sets it too, for other starts)
    with failing_as("gunicorn"):
        http_workers()
        env_forwarded_allow_ips("FORWARDED_ALLOW_IPS")
    if not os.environ.get("WEB_CONCURRENCY", "x").strip():
        del os.environ["WEB_CONCURRENCY"]  # blank: the default, not gunicorn's int("")
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", CONFIG, "facia_site.wsgi"])


if __name__ == "__main__":
    main()
