"""The admin's calibration upload against a real gunicorn: request time of the dev zip, the HTTP
workers' RSS before and after, how long the job takes (when it runs in the background), and a
5,000-image zip's request time with /status_check's slowest answer meanwhile.

    python -m bench.calibration_upload [--tree DIR] [--dev /work/shared/data/dev]

``--tree`` serves another checkout (e.g. ``git archive HEAD~3 | tar -x -C /tmp/old``) with this
checkout's models, for a before/after in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import requests

from bench.gunicorn import Served, children, http_workers, served, until
from bench.images import REPO

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def dev_zip(dev: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("live", "spoof"):
            for path in sorted((dev / label).iterdir()):
                archive.writestr(f"dev/{label}/{path.name}", path.read_bytes())
    return buffer.getvalue()


def many_zip(count: int) -> bytes:
    """``count`` tiny JPEGs (each decoded, searched for a face and refused), ~2 MB zipped."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 30])[1].tobytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            archive.writestr(f"x/{'live' if i % 2 else 'spoof'}/{i}.jpg", jpeg)
    return buffer.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def upload(session: requests.Session, url: str, data: bytes) -> tuple[int, float]:
    page = session.get(url, timeout=30).text
    form = {"csrfmiddlewaretoken": TOKEN.search(page).group(1)}  # type: ignore[union-attr]  # no match: an error
    files = {"archive": ("captures.zip", data, "application/zip")}
    start = time.perf_counter()
    try:
        answer = session.post(
            url,
            data=form,
            files=files,
            headers={"Referer": url},
            timeout=180,
            allow_redirects=False,
        )
        status = answer.status_code
    except requests.RequestException:
        status = 0
    return status, time.perf_counter() - start


def watch_status(base: str, stop: threading.Event, slowest: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{base}/status_check", timeout=120)
        slowest[0] = max(slowest[0], time.perf_counter() - start)
        time.sleep(0.2)


def run(tree: Path, dev: Path, many: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="calibration-upload-"))
    (work / "tmp").mkdir()
    var, tmp = str(work / "var"), str(work / "tmp")
    with served(tree, work, workers=2, FACIA_VAR_DIR=var, TMPDIR=tmp) as server:
        server.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; from accounts.models import Tenant; "
            "User.objects.create_superuser('bench', 'b@example.com', 'bench-password'); "
            "Tenant.objects.create(name='bench')",
        )
        until(lambda: len(http_workers(server.pid)) == 2, 60)
        measure(server, dev, many)


def measure(server: Served, dev: Path, many: int) -> None:
    base = server.base
    session = requests.Session()
    login = f"{base}/admin/login/"
    token = TOKEN.search(session.get(login).text).group(1)  # type: ignore[union-attr]  # no match: an error
    session.post(
        login,
        data={"csrfmiddlewaretoken": token, "username": "bench", "password": "bench-password"},
        headers={"Referer": login},
    )
    url = f"{base}/admin/accounts/tenant/1/calibrate/"
    session.get(url)
    workers = http_workers(server.pid)
    before = [rss_mb(pid) for pid in workers]
    data = dev_zip(dev)
    status, seconds = upload(session, url, data)
    after = [rss_mb(pid) for pid in workers]
    print(f"dev zip ({len(data) / 1e6:.1f} MB): HTTP {status} in {seconds:.2f} s")
    print(
        "HTTP workers' RSS MB before/after: "
        + ", ".join(f"{b:.0f} -> {a:.0f}" for b, a in zip(before, after, strict=True))
    )
    start = time.perf_counter()
    try:
        until(lambda: re.search(r"job-(done|failed)", session.get(url).text), 300, 0.5)
        page = session.get(url).text
        state = "done" if "job-done" in page else "failed"
        print(f"job {state} {time.perf_counter() - start:.1f} s after the redirect")
    except AssertionError:
        print("no background job seen (calibrated in the request)")
    data = many_zip(many)
    stop, slowest = threading.Event(), [0.0]
    watcher = threading.Thread(target=watch_status, args=(base, stop, slowest))
    watcher.start()
    status, seconds = upload(session, url, data)
    time.sleep(2)  # a few more /status_check probes after the answer
    stop.set()
    watcher.join()
    print(
        f"{many}-image zip ({len(data) / 1e6:.1f} MB): HTTP {status} in {seconds:.2f} s; "
        f"slowest /status_check meanwhile {slowest[0]:.2f} s"
    )
    print(f"HTTP workers now: {http_workers(server.pid)} (were {workers})")
    tasks = [pid for pid in descendants(server.pid) if pid not in workers]
    print("other processes' RSS MB: " + ", ".join(f"{rss_mb(p):.0f}" for p in tasks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--dev", type=Path, default=Path("/work/shared/data/dev"))
    parser.add_argument("--many", type=int, default=5000)
    args = parser.parse_args()
    run(args.tree.resolve(), args.dev, args.many)


if __name__ == "__main__":
    main()
