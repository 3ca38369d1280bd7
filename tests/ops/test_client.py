"""python -m facia_client against the real server: verdicts, errors and exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facia_client import FaciaClient, ImageRejected, QuotaExceeded, ServiceError, UsageError
from tests.conftest import LIVE_JPG, REPO, SPOOF_JPG
from tests.servers.entrypoint import Served
from tests.servers.processes import free_port


def run_cli(*args: str, hash_id: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACIA_HASH_ID": hash_id}
    return subprocess.run(
        [sys.executable, "-m", "facia_client", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_live_and_spoof_exit_codes(served: Served) -> None:
    _, hash_id = served.new_tenant()
    live = run_cli(str(LIVE_JPG), "--url", served.base, hash_id=hash_id)
    assert live.returncode == 0, live.stderr
    verdict = json.loads(live.stdout)
    assert verdict["is_live"] == 1 and 0.5 <= verdict["liveness_score"] <= 1
    assert verdict["request_id"]
    spoof = run_cli(str(SPOOF_JPG), "--url", served.base, "--hash-id", hash_id)
    assert spoof.returncode == 1, spoof.stderr
    assert json.loads(spoof.stdout)["is_live"] == 0


def test_wrong_hash_id_exits_3(served: Served) -> None:
    done = run_cli(str(LIVE_JPG), "--url", served.base, hash_id="not-a-real-hash-id")
    assert done.returncode == 3
    failure = json.loads(done.stderr)
    assert failure == {
        "error": "HTTP 401: Invalid credentials",
        "status": 401,
        "exit_code": 3,
        "request_id": failure["request_id"],
    }
    assert done.stdout == ""


def test_corrupt_image_exits_4(served: Served, tmp_path: Path) -> None:
    _, hash_id = served.new_tenant()
    fake = tmp_path / "selfie.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    done = run_cli(str(fake), "--url", served.base, hash_id=hash_id)
    assert done.returncode == 4
    assert "Invalid or corrupt selfie image" in json.loads(done.stderr)["error"]


def test_unknown_file_type_is_refused_before_sending(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageRejected, match="not a PNG or JPEG"):
        FaciaClient("http://127.0.0.1:9", "x").check(text)


def test_quota_exits_5(served: Served) -> None:
    _, hash_id = served.new_tenant(limit=1)
    assert run_cli(str(LIVE_JPG), "--url", served.base, hash_id=hash_id).returncode == 0
    done = run_cli(str(LIVE_JPG), "--url", served.base, hash_id=hash_id)
    assert done.returncode == 5
    assert json.loads(done.stderr)["error"] == "HTTP 429: Your request limit has been reached."


def test_unreachable_server_exits_6() -> None:
    done = run_cli(str(LIVE_JPG), "--url", f"http://127.0.0.1:{free_port()}", hash_id="x")
    assert done.returncode == 6
    assert "cannot reach" in json.loads(done.stderr)["error"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli(hash_id="x").returncode == 2  # no selfie argument
    assert run_cli(str(LIVE_JPG)).returncode == 2  # no hash_id anywhere
    missing = run_cli(str(tmp_path / "missing.jpg"), hash_id="x")
    assert missing.returncode == 2
    assert "cannot read" in json.loads(missing.stderr)["error"]
    with pytest.raises(UsageError):
        FaciaClient("127.0.0.1:5001", "x")


def test_library_api(served: Served) -> None:
    _, hash_id = served.new_tenant(limit=1)
    client = FaciaClient(served.base, hash_id)
    verdict = client.check(LIVE_JPG)
    assert verdict.is_live and verdict.request_id
    with pytest.raises(QuotaExceeded) as caught:
        client.check(LIVE_JPG)
    assert caught.value.status == 429
    assert not isinstance(caught.value, ServiceError)
