"""Real corrupt models for tests (issue 19, item 2): a copy of the installed models with bytes
of one weights file overwritten in place, its size kept (as a disk fault or a bad copy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ml.install import MANIFEST, sha256_of

WEIGHTS = "minifasnet_v2.bin"


def flip_bytes(path: Path, count: int = 4096, at: float = 0.5) -> None:
    """``count`` bytes of ``path`` from ``at`` of its length set to 0xFF (float32 NaN), its
    size kept. (Where NaN weights meet a ReLU, OpenVINO's CPU plugin gives 0, so not every
    place makes a model's output NaN: the middle of MiniFASNetV2's weights does.)"""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + count] = b"\xff" * count
    path.write_bytes(bytes(data))


def corrupt_copy(model_dir: Path, dest: Path, record_digest: bool = False) -> Path:
    """``model_dir`` (without its compile cache) copied to ``dest`` with WEIGHTS corrupted.
    ``record_digest``: the manifest records the corrupt file's digest too, as for a model that
    was broken before it was installed (what the digests cannot catch)."""
    shutil.copytree(model_dir, dest, ignore=shutil.ignore_patterns("cache", "int8"))
    size = (dest / WEIGHTS).stat().st_size
    flip_bytes(dest / WEIGHTS)
    assert (dest / WEIGHTS).stat().st_size == size
    if record_digest:  # (a manifest from before digests were recorded has none to change)
        manifest = json.loads((dest / MANIFEST).read_text())
        if "files" in manifest:
            manifest["files"][WEIGHTS] = sha256_of(dest / WEIGHTS)
        (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return dest
