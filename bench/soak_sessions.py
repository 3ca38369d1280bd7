"""``python -m bench.soak --mode sessions``: whole capture-session walks against real gunicorn.

A closed loop of ``--walkers`` Python threads (``requests``), paced to ``--walks-per-s`` in
all, each taking the next walk of a fixed rotation:

- ``passive``: a passive tenant's session, 2 quality frames, the selfie (202), GET until done;
- ``no_face``: a selfie with no face, refused by its gate (422), the session left open;
- ``head_turn``: a ``head_turn`` tenant's session fed a frame with two faces: the challenge
  fails at once (``multiple_faces``), the selfie is refused (409), GET shows it failed;
- ``tokens``: no token, a garbage token, an unknown session, a wrong X-Hash-Id, and a token of
  a session opened more than ``SESSION_TTL_S`` ago (401 token_expired);
- ``flood``: 12 quality polls back to back on a ``head_turn`` session (the judge ignores polls
  under 0.1 s apart; the session's poll limit answers 429 past 8 a second).

Every ``--prune-every`` seconds the walkers pause (no walk in flight) and ``manage.py
prune_sessions --days 0`` runs, as the operator's daily job would at a quiet time: the
session table's rows are sampled with the workers' RSS, and must come back down after each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests

from bench.gunicorn import manage
from bench.images import jpeg_uri, no_face_jpeg, selfie_jpeg
from bench.load import worker_rss_mb
from bench.threads import Threads

TTL_S = 20  # SESSION_TTL_S of the bench's server: a walk's token is expired 20 s later
FLOOD = 12  # polls back to back: past the session's 8 a second (SESSION_QUALITY_PER_S)
ROTATION = ("passive", "no_face", "head_turn", "tokens", "flood")
TABLES = {
    "sessions": "capture_capturesession",
    "checks": "liveness_livenesscheck",
    "counters": "guard_counter",
}


def two_faces_jpeg() -> bytes:
    """Two copies of the selfie side by side, 480 px wide (a quality frame): the second face
    is as large as the first, so the gate and the judge count two."""
    one = cv2.imdecode(np.frombuffer(selfie_jpeg(480, 640), np.uint8), cv2.IMREAD_COLOR)
    assert one is not None
    both = cv2.resize(np.hstack([one, one]), (480, 320), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", both, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


@dataclass(frozen=True)
class Bodies:
    face: bytes = field(default_factory=lambda: body(selfie_jpeg(480, 640)))
    no_face: bytes = field(default_factory=lambda: body(no_face_jpeg(480, 640)))
    two_faces: bytes = field(default_factory=lambda: body(two_faces_jpeg()))


def body(jpeg: bytes) -> bytes:
    return json.dumps({"selfie_image": jpeg_uri(jpeg)}).encode()


@dataclass
class Tally:
    """What the walks saw: statuses per call, walk outcomes, and what was not expected."""

    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.statuses[key] += 1
            if not ok:
                self.note(f"{key}: {detail[:200]}")

    def note(self, line: str) -> None:
        """Keep the first 20 lines; count the rest."""
        self.unexpected.append(line if len(self.unexpected) < 20 else "")

    def outcome(self, name: str, ok: bool) -> None:
        with self.lock:
            self.outcomes[name] += 1
            if not ok:
                self.note(f"outcome {name}")


class Walker:
    """One client thread's calls (its own connection pool)."""

    def __init__(self, base: str, tenants: dict[str, str], bodies: Bodies, tally: Tally) -> None:
        self.base, self.tenants, self.bodies, self.tally = base, tenants, bodies, tally
        self.http = requests.Session()

    def call(self, label: str, expected: set[int], method: str, path: str, **kw: Any) -> Any:
        """The answer's JSON (None when not JSON); counted as ``label status``."""
        try:
            answer = self.http.request(method, self.base + path, timeout=60, **kw)
        except requests.RequestException as exc:
            self.tally.count(f"{label} {type(exc).__name__}", False, str(exc))
            return None
        ok = answer.status_code in expected
        self.tally.count(f"{label} {answer.status_code}", ok, answer.text)
        try:
            return answer.json()
        except ValueError:
            return None

    def open(self, tenant: str) -> tuple[str, dict[str, str]] | None:
        opened = self.call(
            "open", {201}, "POST", "/sessions", json={"hash_id": self.tenants[tenant]}
        )
        if not opened or "session_id" not in opened:
            return None
        return opened["session_id"], {
            "Authorization": f"Bearer {opened['token']}",
            "Content-Type": "application/json",
        }

    def post(
        self, label: str, expected: set[int], sid: str, auth: dict[str, str], data: bytes
    ) -> Any:
        action = label.split()[0]
        return self.call(
            label, expected, "POST", f"/sessions/{sid}/{action}", data=data, headers=auth
        )

    def read(self, sid: str, tenant: str) -> Any:
        headers = {"X-Hash-Id": self.tenants[tenant]}
        return self.call("get", {200}, "GET", f"/sessions/{sid}", headers=headers) or {}


def walk_passive(w: Walker, opened: Opened) -> None:
    session = w.open("passive")
    if session is None:
        return w.tally.outcome("passive: not opened", False)
    sid, auth = session
    for _ in range(2):
        w.post("quality", {200}, sid, auth, w.bodies.face)
    w.post("selfie", {202}, sid, auth, w.bodies.face)
    read: dict[str, Any] = {}
    for _ in range(50):  # a guard against a hang: the verdict is written before the 202
        read = w.read(sid, "passive")
        if read.get("state") != "processing":
            break
    result = read.get("liveness_result") or {}
    done = read.get("state") == "done" and result.get("is_live") in (0, 1)
    w.tally.outcome(f"passive: {read.get('state')} is_live={result.get('is_live')}", done)


def walk_no_face(w: Walker, opened: Opened) -> None:
    session = w.open("passive")
    if session is None:
        return w.tally.outcome("no_face: not opened", False)
    sid, auth = session
    w.post("quality", {200}, sid, auth, w.bodies.no_face)
    refused = w.post("selfie", {422}, sid, auth, w.bodies.no_face) or {}
    read = w.read(sid, "passive")
    code = (read.get("refused") or {}).get("code")
    ok = read.get("state") == "open" and code == refused.get("code") is not None
    w.tally.outcome(f"no_face: {read.get('state')}, refused {code}", ok)
    opened.add(sid, auth)


def walk_head_turn(w: Walker, opened: Opened) -> None:
    session = w.open("head_turn")
    if session is None:
        return w.tally.outcome("head_turn: not opened", False)
    sid, auth = session
    polled = w.post("quality", {200}, sid, auth, w.bodies.two_faces) or {}
    code = (polled.get("challenge") or {}).get("code")
    refused = w.post("selfie", {409}, sid, auth, w.bodies.face) or {}
    read = w.read(sid, "head_turn")
    ok = read.get("challenge") == "failed" and code == refused.get("reason") == "multiple_faces"
    w.tally.outcome(
        f"head_turn: challenge {read.get('challenge')} {read.get('challenge_code')}", ok
    )


def walk_tokens(w: Walker, opened: Opened) -> None:
    old = opened.expired()
    if old:
        answer = w.post("quality (expired token)", {401}, *old, w.bodies.face) or {}
        code = answer.get("code")
        w.tally.outcome(f"tokens: expired token -> {code}", code == "token_expired")
    data = w.bodies.face
    garbage = {"Authorization": "Bearer " + "x" * 43}
    unknown = f"/sessions/{uuid.uuid4()}/quality"
    w.call("quality (unknown session)", {404}, "POST", unknown, data=data, headers=garbage)
    sid = opened.newest()
    if sid is None:
        return
    path = f"/sessions/{sid}/quality"
    w.call("quality (no token)", {401}, "POST", path, data=data)
    w.call("quality (garbage token)", {401}, "POST", path, data=data, headers=garbage)
    w.call("get (wrong hash_id)", {401}, "GET", f"/sessions/{sid}", headers={"X-Hash-Id": "nope"})


def walk_flood(w: Walker, opened: Opened) -> None:
    session = w.open("head_turn")
    if session is None:
        return w.tally.outcome("flood: not opened", False)
    sid, auth = session
    states = [
        (
            (w.post("quality (flood)", {200, 429}, sid, auth, w.bodies.face) or {}).get("challenge")
            or {}
        )
        for _ in range(FLOOD)
    ]
    seen = {s["state"] for s in states if "state" in s}
    # A still face: the reference, then the first step asked; never a failure.
    w.tally.outcome(f"flood: challenge {'/'.join(sorted(seen))}", seen == {"running"})
    opened.add(sid, auth)


WALKS: dict[str, Callable[[Walker, Opened], None]] = {
    "passive": walk_passive,
    "no_face": walk_no_face,
    "head_turn": walk_head_turn,
    "tokens": walk_tokens,
    "flood": walk_flood,
}


class Opened:
    """Open sessions' tokens, kept until they have expired (the tokens walk reuses them)."""

    def __init__(self) -> None:
        self.queue: deque[tuple[float, str, dict[str, str]]] = deque(maxlen=1000)
        self.lock = threading.Lock()

    def add(self, sid: str, auth: dict[str, str]) -> None:
        with self.lock:
            self.queue.append((time.monotonic(), sid, auth))

    def expired(self) -> tuple[str, dict[str, str]] | None:
        with self.lock:
            if self.queue and time.monotonic() - self.queue[0][0] > TTL_S + 1:
                _, sid, auth = self.queue.popleft()
                return sid, auth
        return None

    def newest(self) -> str | None:
        with self.lock:
            return self.queue[-1][1] if self.queue else None

    def clear(self) -> None:
        with self.lock:
            self.queue.clear()


class Loop(Threads):
    """The walkers, paced to ``rate`` walks a second in all, with a pause for each prune."""

    def __init__(self, base: str, tenants: dict[str, str], rate: float, walkers: int) -> None:
        super().__init__()
        self.tally, self.opened = Tally(), Opened()
        bodies = Bodies()
        self.walkers = [Walker(base, tenants, bodies, self.tally) for _ in range(walkers)]
        self.rate = rate
        self.rotation: Iterator[str] = itertools.cycle(ROTATION)
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.running.set()
        self.in_flight = 0
        self.due = time.monotonic()
        for walker in self.walkers:
            self.spawn(self.run_walker, walker)

    def next_walk(self) -> str | None:
        """The next walk's name once it is due (None when stopped)."""
        while not self.stopping.is_set():
            if not self.running.wait(0.1):
                continue
            with self.lock:
                due = self.due = max(self.due + 1 / self.rate, time.monotonic() - 1)
                self.in_flight += 1
                name = next(self.rotation)
            if not self.stopping.wait(max(0.0, due - time.monotonic())):
                return name
            self.done()
        return None

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def run_walker(self, walker: Walker) -> None:
        while (name := self.next_walk()) is not None:
            try:
                WALKS[name](walker, self.opened)
            finally:
                self.done()

    def quiet(self) -> None:
        """Stop starting walks and wait until none is in flight."""
        self.running.clear()
        deadline = time.monotonic() + 120
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)


def row_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        return {k: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for k, t in TABLES.items()}


@dataclass
class Samples:
    """RSS per worker and the tables' rows, every ``every_s`` seconds."""

    master_pid: int
    database: Path
    rss: list[tuple[float, list[float]]] = field(default_factory=list)
    rows: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    prunes: list[tuple[float, int, str]] = field(default_factory=list)

    def take(self, t: float) -> None:
        self.rss.append((t, worker_rss_mb(self.master_pid)))
        self.rows.append((t, row_counts(self.database)))


def drive(
    args: argparse.Namespace, env: dict[str, str], base: str, tenants: dict[str, str]
) -> tuple[Tally, Samples]:
    """The loop for ``args.duration`` seconds: samples every ``args.sample_s``, a prune every
    ``args.prune_every``."""
    samples = Samples(args.master_pid, args.database)
    start = time.monotonic()
    next_prune = args.prune_every
    with Loop(base, tenants, args.walks_per_s, args.walkers) as loop:
        while (t := time.monotonic() - start) < args.duration:
            samples.take(t)
            if t >= next_prune:
                loop.quiet()
                before = row_counts(args.database)["sessions"]
                said = manage(env, "prune_sessions", "--days", "0").strip()
                loop.opened.clear()  # their sessions are gone: 404 now, not token_expired
                samples.prunes.append((t, before, said))
                loop.running.set()
                next_prune += args.prune_every
            time.sleep(max(0.0, min(args.sample_s, args.duration - t)))
        loop.quiet()
    samples.take(time.monotonic() - start)
    return loop.tally, samples


def report(tally: Tally, samples: Samples, duration: float, cpu_s: float, cores: int) -> bool:
    calls = sum(tally.statuses.values())
    walks = sum(tally.outcomes.values())
    print(f"walks {walks} ({walks / duration:.2f}/s), calls {calls} ({calls / duration:.2f}/s)")
    print("statuses per call:")
    for key, n in sorted(tally.statuses.items()):
        print(f"  {key}: {n}")
    print("walk outcomes:")
    for key, n in sorted(tally.outcomes.items()):
        print(f"  {key}: {n}")
    print(
        f"client CPU (this process): {cpu_s:.1f} s = {100 * cpu_s / (duration * cores):.1f}% "
        f"of {cores} cores"
    )
    print("rows over time (s: sessions / check records / throttle counters):")
    print(
        "  "
        + ", ".join(
            f"{t:.0f}: {r['sessions']}/{r['checks']}/{r['counters']}" for t, r in samples.rows
        )
    )
    for t, before, said in samples.prunes:
        print(f"prune at {t:.0f} s: {before} session rows before; {said}")
    if tally.unexpected:
        shown = [line for line in tally.unexpected if line]
        more = len(tally.unexpected) - len(shown)
        print(f"UNEXPECTED ({len(tally.unexpected)}):\n  " + "\n  ".join(shown))
        if more:
            print(f"  ... and {more} more")
    return not tally.unexpected


def plateau(samples: Samples) -> bool:
    """Rows come back down after each prune: the highest count before the last prune is not
    above twice the first prune's (a table that only grows would double and more)."""
    if len(samples.prunes) < 2:
        print("sessions plateau: fewer than 2 prunes in the run, not judged")
        return True
    first, last = samples.prunes[0][1], max(b for _, b, _ in samples.prunes[1:])
    flat = last <= 2 * max(first, 1)
    before = [b for _, b, _ in samples.prunes]
    print(f"sessions plateau (rows before each prune {before}): {'yes' if flat else 'NO'}")
    return flat
