"""Multiprocess metric files whose pages are allocated before they are written.

prometheus_client keeps each worker's samples in a file it maps into memory, created and
grown with ``truncate``: a sparse file, whose pages get their disk blocks only when first
written through the mapping. On a full filesystem that write is a SIGBUS, which kills the
process: with ``PROMETHEUS_MULTIPROC_DIR`` (a temporary directory by default) on a full disk,
each worker would die at its first new sample, at boot or on a request, and gunicorn replace
it in a loop; no request answered, not even the 503 a full disk should get
(tests/system/test_status_check_disk_full.py). Here the blocks are allocated first
(``posix_fallocate``): no room is an ``OSError`` the caller can drop the sample on.
"""

import os
from typing import Any

from prometheus_client import values
from prometheus_client.mmap_dict import _INITIAL_MMAP_SIZE, MmapedDict


class AllocatedMmapedDict(MmapedDict):
    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if not read_mode:
            _allocate_new(filename)
        # MmapedDict's own, by name (mypy excuses its unannotated methods by name; untyped
        # super() calls it cannot place): single inheritance, the same call as super()'s.
        MmapedDict.__init__(self, filename, read_mode)

    def _init_value(self, key: str) -> None:
        """As MmapedDict's, after allocating the room it is about to grow into."""
        encoded = len(key.encode("utf-8"))
        needed = self._used + 4 + encoded + (8 - (encoded + 4) % 8) + 16
        capacity = self._capacity
        while needed > capacity:
            capacity *= 2
        if capacity != self._capacity:
            assert self._f is not None
            os.posix_fallocate(self._f.fileno(), 0, capacity)
        MmapedDict._init_value(self, key)  # by name, as in __init__


def _allocate_new(filename: str) -> None:
    """A new file's first pages, allocated; no file left behind when there is no room (an
    empty one broke every scrape: it has no header to read)."""
    with open(filename, "a+b") as handle:
        if os.fstat(handle.fileno()).st_size:
            return
        try:
            os.posix_fallocate(handle.fileno(), 0, _INITIAL_MMAP_SIZE)
        except OSError:
            os.unlink(filename)
            raise


def install() -> None:
    """Every multiprocess value from now on keeps its samples in an AllocatedMmapedDict."""
    values_module: Any = values
    values_module.MmapedDict = AllocatedMmapedDict
