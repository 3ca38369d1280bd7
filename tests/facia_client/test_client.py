"""python -m facia_client with no server behind it: usage errors, unreadable or unknown files,
no answer, a server that never answers (against the real server: tests/system/test_client.py)."""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from facia_client import (
    FaciaClient,
    ImageRejected,
    Timeout,
    UsageError,
)
from tests.conftest import LIVE_JPG, REPO
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


def test_unknown_file_type_is_refused_before_sending(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageRejected, match="not a PNG or JPEG"):
        FaciaClient("http://127.0.0.1:9", "x").check(text)


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


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_timeout_is_surfaced(silent_server: str) -> None:
    with pytest.raises(Timeout, match="within 0.5 s"):
        FaciaClient(silent_server, "x", timeout=0.5).check(LIVE_JPG)
    done = run_cli(str(LIVE_JPG), "--url", silent_server, "--timeout", "0.5", hash_id="x")
    assert done.returncode == 6 and "within 0.5 s" in json.loads(done.stderr)["error"]
