"""One abusive capture-session token against a real gunicorn: a normal client's /liveness
latency while the token sends worst-case quality frames at the allowed rate and selfie bursts
whose last frame has no face, against the same client's latency with the token quiet.
``--tree`` serves another checkout's code (e.g. an older commit from ``git archive``) for
before/after figures.

    python -m bench.session_abuse [--tree DIR] [--port 5411] [--rounds 10] [--selfies-per-s 2]

The quality frames alternate a 64-scan progressive JPEG (69 kB, declaring 8000x5000) and the
largest baseline frame the sessions accept; each selfie is a burst of two faces and a frame
with none (refused at the last gate: no quota, so never ends the session), 3.5 MB of body.
Also printed: the CPU the workers spend on the token alone (the client runs on the same
machine, so the latency ratio also carries its cost and other load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

from bench.corpus import jpeg_with_empty_scans
from bench.gunicorn import http_workers, served
from bench.images import jpeg_uri, no_face_jpeg, selfie_body, selfie_jpeg
from bench.threads import Threads

REPO = Path(__file__).resolve().parents[1]
QUALITY_PER_S = 8  # SESSION_QUALITY_PER_S's default: the rate one token is allowed


def abusive_bodies() -> tuple[list[bytes], bytes]:
    """(quality bodies to rotate, one selfie burst body)."""
    progressive = jpeg_with_empty_scans(54, (8000, 5000))  # 64 scans in all
    largest = no_face_jpeg(1024, 1024)
    quality = [
        json.dumps({"selfie_image": jpeg_uri(image)}).encode() for image in (progressive, largest)
    ]
    face = selfie_jpeg(1620, 2160)
    burst = [jpeg_uri(face), jpeg_uri(face), jpeg_uri(no_face_jpeg(1620, 2160))]
    return quality, json.dumps({"frames": burst}).encode()


class Abuser(Threads):
    """One token, for the whole run: while ``active``, quality calls fired at QUALITY_PER_S
    whatever the answers take (a pool of senders), and selfie bursts at ``selfies_per_s``."""

    def __init__(self, base: str, session_id: str, token: str, selfies_per_s: float) -> None:
        super().__init__()
        self.selfies_per_s = selfies_per_s
        self.url = f"{base}/sessions/{session_id}"
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.quality, self.selfie = abusive_bodies()
        self.active = threading.Event()
        self.statuses: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.in_flight = 0
        self._senders()

    def pause(self) -> None:
        """Stop sending and wait for every call in flight to be answered."""
        self.active.clear()
        deadline = time.monotonic() + 120
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)

    def _post(self, http: requests.Session, action: str, body: bytes) -> None:
        with self.lock:
            self.in_flight += 1
        try:
            status: object = http.post(
                f"{self.url}/{action}", data=body, headers=self.headers, timeout=60
            ).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        with self.lock:
            self.statuses[f"{action} {status}"] += 1
            self.in_flight -= 1

    def _paced(self, period: float, offset: float, send: Callable[[int], None]) -> None:
        """Call ``send(n)`` every ``period`` seconds while active, until stopped."""
        due, n = None, 0
        while not self.stopping.is_set():
            if not self.active.wait(0.1):
                due = None
                continue
            due = time.monotonic() + offset if due is None else due
            if self.stopping.wait(max(0.0, due - time.monotonic())):
                return
            send(n)
            n, due = n + 1, due + period

    def _senders(self) -> None:
        """The quality senders (each its own connection, offset in turn) and the selfie's."""
        senders = 4
        for i in range(senders):
            http = requests.Session()

            def quality(n: int, i: int = i, http: requests.Session = http) -> None:
                self._post(http, "quality", self.quality[(i + n) % len(self.quality)])

            self.spawn(self._paced, senders / QUALITY_PER_S, i / QUALITY_PER_S, quality)
        selfie_http = requests.Session()

        def selfie(n: int) -> None:
            self._post(selfie_http, "selfie", self.selfie)

        self.spawn(self._paced, 1 / self.selfies_per_s, 0.0, selfie)


def liveness_times(base: str, body: bytes, count: int) -> tuple[list[float], Counter[int]]:
    """Seconds of each of ``count`` /liveness calls one after another, and their statuses."""
    http = requests.Session()
    times, statuses = [], Counter[int]()
    headers = {"Content-Type": "application/json"}
    for _ in range(count):
        started = time.perf_counter()
        reply = http.post(f"{base}/liveness", data=body, headers=headers, timeout=120)
        times.append(time.perf_counter() - started)
        statuses[reply.status_code] += 1
    return times, statuses


def workers_cpu_s(master: int) -> float:
    total = 0
    for pid in http_workers(master):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def measure(base: str, master: int, abuser: Abuser, body: bytes, args: argparse.Namespace) -> None:
    """Quiet and abused phases, interleaved (the machine's other load drifts): the p50 of
    each kind's calls pooled, and the workers' CPU per second with the token alone."""
    pooled: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for abused in (False, True):
            if abused:
                abuser.active.set()
                time.sleep(0.5)  # let it reach its rate
            times, statuses = liveness_times(base, body, args.requests)
            abuser.pause()
            pooled[abused] += times
            label = "abused" if abused else "quiet "
            p50 = statistics.median(times) * 1000
            print(f"{label}: /liveness p50 {p50:.1f} ms {dict(statuses)}", flush=True)
    q, a = (statistics.median(pooled[k]) for k in (False, True))
    print(f"the token's answers: {dict(abuser.statuses)}")
    print(f"/liveness p50 quiet {q * 1000:.1f} ms, abused {a * 1000:.1f} ms: x{a / q:.2f}")
    abuser.active.set()
    cpu, started = workers_cpu_s(master), time.perf_counter()
    time.sleep(10)
    used = (workers_cpu_s(master) - cpu) / (time.perf_counter() - started)
    abuser.pause()
    print(f"the token alone for 10 s: workers {used:.3f} CPU-s/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5411)
    parser.add_argument("--requests", type=int, default=20, help="/liveness calls per phase")
    parser.add_argument("--rounds", type=int, default=10, help="quiet/abused pairs")
    parser.add_argument("--selfies-per-s", type=float, default=2.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facia-session-abuse-"))
    # SESSION_TTL_S: the token outlives the run, however slow.
    with served(args.tree, work, args.port, workers=None, SESSION_TTL_S="3600") as server:
        base = server.base
        attacker, customer = server.create_tenant("attacker"), server.create_tenant("customer")
        body = selfie_body(customer)
        liveness_times(base, body, 5)  # warm both workers' paths
        session = requests.post(f"{base}/sessions", json={"hash_id": attacker}, timeout=30).json()
        token = session["session_id"], session["token"]
        with Abuser(base, *token, args.selfies_per_s) as abuser:
            measure(base, server.pid, abuser, body, args)


if __name__ == "__main__":
    main()
