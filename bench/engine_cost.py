"""The engine's own cost per image on one core, this tree against an older one (by default
commit 14e976a, issue 23's baseline), back to back: one process per tree, both pinned to the
same core, taking turns in short rounds (the order alternating), so a busy machine slows both
alike. CPU time (user + system of every thread, getrusage) is the figure to read: on a shared
machine it moves far less than wall time. Also this tree's phone photo against its 640x480
selfie, in the same rounds.

    python -m bench.engine_cost [--old ../wt-old] [--commit 14e976a] [--rounds 15] [--per-round 20]

``--old``: a checkout of the older tree with its models installed; made when missing (git
worktree at ``--commit``, then its manage.py migrate and install_models).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.gunicorn import manage_in
from bench.images import REPO, parse_size, selfie_jpeg

BASELINE = "14e976a"
# Runs in the tree's own directory with its own ml package and models, pinned to core argv[1]
# (-1: not pinned): loads the engine, then for each line "NAME N" on stdin runs N checks of the
# JPEG NAME and answers one JSON line (CPU and wall ms per check, median wall ms of one check).
CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
if int(sys.argv[1]) >= 0:
    os.sched_setaffinity(0, {int(sys.argv[1])})
from ml.engine import LivenessEngine
precision = os.environ.get("ENGINE_PRECISION", "f32")
engine = LivenessEngine.load(Path("var/models"), precision=precision)
engine.warm_up()
images = {name: Path(path).read_bytes() for name, path in json.loads(sys.argv[2]).items()}
for data in images.values():
    for _ in range(5):
        engine.check(data)
print("ready", flush=True)
for line in sys.stdin:
    name, count = line.split()
    data, count = images[name], int(count)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    each = []
    for _ in range(count):
        engine.check(data)
        each.append(time.perf_counter())
    wall, after = each[-1] - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    p50 = sorted(b - a for a, b in zip([start, *each], each))[count // 2]
    print(json.dumps({"cpu_ms": 1000 * cpu / count, "wall_ms": 1000 * wall / count,
                      "p50_ms": 1000 * p50}), flush=True)
"""


@dataclass
class Child:
    tree: Path
    process: subprocess.Popen[str]

    def send(self, name: str, count: int) -> None:
        """Start ``count`` checks of the image ``name``; ``receive`` gives their figures."""
        assert self.process.stdin
        self.process.stdin.write(f"{name} {count}\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, float]:
        assert self.process.stdout
        return dict(json.loads(self.process.stdout.readline()))

    def run(self, name: str, count: int) -> dict[str, float]:
        self.send(name, count)
        return self.receive()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(60)


def start(tree: Path, core: int | None, images: dict[str, str]) -> Child:
    """An engine of ``tree`` in its own process, pinned to ``core`` (None: any core), with
    ``images`` (name -> JPEG path) loaded and checked a few times."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MODEL_DIR": str(tree / "var" / "models")}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(-1 if core is None else core), json.dumps(images)],
        cwd=tree,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"the engine of {tree} did not start (exit {process.wait()})")
    return Child(tree, process)


def jpeg_files(sizes: dict[str, str]) -> dict[str, str]:
    """A synthetic selfie JPEG per name -> size (WxH) in a new temporary directory; name ->
    path, as ``start`` takes them."""
    work = Path(tempfile.mkdtemp(prefix="facia-engine-cost-"))
    images = {}
    for name, dims in sizes.items():
        path = work / f"{name}.jpg"
        path.write_bytes(selfie_jpeg(*parse_size(dims)))
        images[name] = str(path)
    return images


def old_tree(path: Path, commit: str) -> Path:
    """``path``, a checkout of ``commit`` with its models installed (made when missing)."""
    if not (path / "var" / "models" / "manifest.json").exists():
        if not path.exists():
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(path), commit], cwd=REPO, check=True
            )
        env = {**os.environ, "FACIA_VAR_DIR": str(path / "var")}
        env.pop("MODEL_DIR", None)
        env.pop("DATABASE_URL", None)
        manage_in(path, env, "migrate", "--noinput", "-v0")
        manage_in(path, env, "install_models")
    return path


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


@dataclass
class Costs:
    ratio_cpu: float  # this tree / the old, median of the rounds' ratios
    ratio_wall: float
    new_cpu_ms: float
    old_cpu_ms: float
    photo_ratio_cpu: float  # this tree: 4000x3000 photo / 640x480 selfie
    photo_ratio_wall: float


def measure(
    old: Path, rounds: int, per_round: int, size: str = "640x480", large: str = "4000x3000"
) -> Costs:
    images = jpeg_files({"selfie": size, "photo": large})
    core = max(os.sched_getaffinity(0))
    new, was = start(REPO, core, images), start(old, core, images)
    samples: dict[str, list[float]] = {}

    def keep(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    try:
        for index in range(rounds):
            order = [(new, "new"), (was, "old")][:: 1 if index % 2 else -1]
            got = {label: child.run("selfie", per_round) for child, label in order}
            photo = new.run("photo", max(1, per_round // 4))
            for kind in ("cpu_ms", "wall_ms"):
                keep(f"new {kind}", got["new"][kind])
                keep(f"old {kind}", got["old"][kind])
                keep(f"ratio {kind}", got["new"][kind] / got["old"][kind])
                keep(f"photo {kind}", photo[kind])
                keep(f"photo ratio {kind}", photo[kind] / got["new"][kind])
    finally:
        new.close()
        was.close()
    print(
        f"engine cost per image on one core (core {core}), {rounds} interleaved rounds of "
        f"{per_round} checks; this tree vs {old} (median, min-max over rounds):"
    )
    for key in ("cpu_ms", "wall_ms"):
        print(
            f"  {key[:-3]:<5}  this tree {spread(samples[f'new {key}'])} ms, old "
            f"{spread(samples[f'old {key}'])} ms, ratio {spread(samples[f'ratio {key}'])}"
        )
        print(
            f"  {key[:-3]:<5}  {large} photo {spread(samples[f'photo {key}'])} ms, "
            f"/ {size}: {spread(samples[f'photo ratio {key}'])}"
        )
    median = statistics.median
    return Costs(
        median(samples["ratio cpu_ms"]),
        median(samples["ratio wall_ms"]),
        median(samples["new cpu_ms"]),
        median(samples["old cpu_ms"]),
        median(samples["photo ratio cpu_ms"]),
        median(samples["photo ratio wall_ms"]),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--old", type=Path, default=REPO.parent / f"{REPO.name}-old")
    parser.add_argument("--commit", default=BASELINE)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=20)


def main(argv: list[str] | None = None) -> Costs:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return measure(old_tree(args.old, args.commit), args.rounds, args.per_round)


if __name__ == "__main__":
    main()
