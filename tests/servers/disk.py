"""A small disk of its own (a tmpfs) and filling it up, for the full-disk tests."""

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def small_tmpfs(mount: Path, size: str = "4m") -> Iterator[str]:
    """A tmpfs of ``size`` mounted on ``mount`` (created), unmounted afterwards. Yields "" when
    mounted, else why not (mounting needs CAP_SYS_ADMIN)."""
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        yield f"cannot mount a small tmpfs here: {done.stderr.strip()}"
        return
    try:
        yield ""
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_disk(path: Path) -> None:
    """Write zeros to ``path`` until its filesystem has no room left (ENOSPC)."""
    with path.open("wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 65536)
