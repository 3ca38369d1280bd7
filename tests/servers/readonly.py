"""A command run with one path read-only, as a read-only volume or a directory the service's
user cannot write. chmod does not stop root (the tests may run as root): a read-only bind
mount in a private mount namespace does, for root too, and needs no privileges where the
kernel allows unprivileged user namespaces."""

import shutil
import subprocess
from pathlib import Path

from tests.conftest import skip_or_fail

# sh's $0 is the path, "$@" the command.
MOUNT_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def read_only(path: Path) -> list[str]:
    """The prefix of a command that runs it (exec'd: the same process) with ``path`` mounted
    read-only over itself; skips the test where this kernel or image cannot do it (fails it
    under CI)."""
    probe = [*UNSHARE, "sh", "-c", MOUNT_READ_ONLY, str(path), "true"]
    if shutil.which("unshare") is None:
        skip_or_fail("no unshare here: cannot make a path read-only for root")
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount read-only without privileges here: {done.stderr.strip()}")
    return [*UNSHARE, "sh", "-c", MOUNT_READ_ONLY, str(path)]
