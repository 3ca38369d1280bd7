"""telemetry.metric_files: sample files whose pages have their disk blocks before any write
(the full-disk SIGBUS itself: tests/system/test_status_check_disk_full.py)."""

import os
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

from telemetry.metric_files import AllocatedMmapedDict


def allocated(path: Path) -> bool:
    stat = os.stat(path)
    return stat.st_blocks * 512 >= stat.st_size


def test_a_new_file_and_each_growth_are_allocated(tmp_path: Path) -> None:
    path = tmp_path / "counter_1.db"
    samples = AllocatedMmapedDict(str(path))
    assert allocated(path)
    first = os.stat(path).st_size
    keys = [f'["facia_http_requests", {{"endpoint": "e{n:05d}"}}]' for n in range(3000)]
    for n, key in enumerate(keys):
        samples.write_value(key, float(n), 0.0)
    samples.close()
    assert os.stat(path).st_size > first
    assert allocated(path)
    read = {key: value for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))}
    assert read == {key: float(n) for n, key in enumerate(keys)}
