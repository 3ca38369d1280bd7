"""The examples of README.md and docs/integrator/ run as written against the real server
(bin/entrypoint, gunicorn): each shell block's commands, read from the page, with the docs'
address replaced by the server's, `selfie.jpg` a live dev image and `"Acme"` a fresh name;
each answer compared with the output the page prints under its command: the same keys, equal
literals, the same JSON types for scores, and any string where the page abbreviates one
(`"4f0c..."`), gives a timestamp or ends an object with `...`. The Python example of
client.md runs too, and the error line it prints is what the command line prints."""

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from markdown_it import MarkdownIt
from PIL import Image

from tests.conftest import LIVE_JPG, REPO, data_uri
from tests.servers.entrypoint import Served

pytestmark = pytest.mark.system

ADDRESS = re.compile(r"(?:http://)?(?:127\.0\.0\.1|localhost):5001")
ELIDED = "..."
# A command goes on while its line ends with a backslash or a pipe.
CONTINUED = re.compile(r"(\\|\|)\s*$")
SKIPPED = ("pip install", "export ", "make serve")  # set up by the fixtures instead


def fences(page: Path) -> list[str]:
    """The page's plain fenced blocks (no language: shell transcripts), as a Markdown parser
    reads them: a labelled block's closing fence opens nothing."""
    tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
    return [t.content for t in tokens if t.type == "fence" and not t.info.strip()]


def transcript(block: str) -> list[tuple[str, str]]:
    """(command, the output printed under it) for each command of a shell block."""
    steps: list[tuple[str, str]] = []
    lines = iter(block.splitlines())
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(("{", " ")) and steps:  # output, or its continuation
            command, output = steps[-1]
            steps[-1] = (command, f"{output}\n{line}".strip())
            continue
        command = line
        while CONTINUED.search(command):
            command += "\n" + next(lines)
        steps.append((command, ""))
    return steps


def documented(output: str) -> Any:
    """The printed output as JSON; a trailing `, ...}` leaves the object open."""
    return json.loads(re.sub(r",\s*\.\.\.\s*}", ', "...": "..."}', output))


def is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def assert_like(actual: Any, shown: Any, where: str = "") -> None:
    """``actual`` is what the docs show as ``shown``."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r}"
        keys = set(shown) - {ELIDED}
        assert keys <= set(actual), f"{where}: {sorted(keys - set(actual))} not answered"
        if ELIDED not in shown:
            assert set(actual) == keys, f"{where}: {sorted(set(actual) - keys)} not shown"
        for key in keys:
            assert_like(actual[key], shown[key], f"{where}.{key}")
    elif isinstance(shown, str) and (ELIDED in shown or is_timestamp(shown)):
        assert isinstance(actual, str), f"{where}: {actual!r}"
    elif isinstance(shown, float):
        assert isinstance(actual, float), f"{where}: {actual!r}"
    else:
        assert actual == shown and type(actual) is type(shown), f"{where}: {actual!r} != {shown!r}"


class Shell:
    """Runs the docs' commands in a directory holding selfie.jpg, as an integrator would."""

    def __init__(self, served: Served, work: Path) -> None:
        self.served, self.work = served, work
        shutil.copy(LIVE_JPG, work / "selfie.jpg")
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "FACIA_HASH_ID": ""}

    def command(self, written: str) -> str:
        command = ADDRESS.sub(self.served.base, written)
        command = re.sub(r"^facia-client ", f"{sys.executable} -m facia_client ", command)
        command = command.replace(".venv/bin/python manage.py", f"{REPO}/bin/entrypoint manage")
        return command.replace('"Acme"', f"acme-{uuid.uuid4().hex[:8]}")

    def run(self, written: str) -> str:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", self.command(written)],
            cwd=self.work,
            env={**self.served.env, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{written}\n{done.stderr}"
        return done.stdout.strip()


@pytest.fixture
def shell(served: Served, tmp_path: Path) -> Shell:
    return Shell(served, tmp_path)


def test_readme_first_use_runs_as_written(shell: Shell) -> None:
    """create_tenant's last line is a hash_id; /status_check says what the comment says."""
    block = next(b for b in fences(REPO / "README.md") if "create_tenant" in b)
    for command, _ in transcript(block):
        if command.startswith(SKIPPED):
            continue
        out = shell.run(command)
        if "create_tenant" in command:
            shell.env["FACIA_HASH_ID"] = out.splitlines()[-1]
        else:
            assert out == re.findall(r'# "([^"]+)"', command)[0]
    checked = requests.post(
        f"{shell.served.base}/liveness",
        json={"hash_id": shell.env["FACIA_HASH_ID"], "selfie_image": data_uri(LIVE_JPG)},
        timeout=60,
    )
    assert checked.status_code == 201, checked.text


def test_client_page_commands_answer_as_shown(shell: Shell) -> None:
    _, shell.env["FACIA_HASH_ID"] = shell.served.new_tenant()
    ran = 0
    for block in fences(REPO / "docs" / "integrator" / "client.md"):
        for command, output in transcript(block):
            if command.startswith(SKIPPED) or not output:
                continue
            assert_like(json.loads(shell.run(command)), documented(output), command)
            ran += 1
    assert ran == 2  # facia-client and curl


def test_client_page_error_line_is_what_the_cli_prints(shell: Shell) -> None:
    _, hash_id = shell.served.new_tenant()
    text = (REPO / "docs" / "integrator" / "client.md").read_text(encoding="utf-8")
    (line,) = re.findall(r'^\{"error": "HTTP 422.*$', text, re.M)
    wall = shell.work / "wall.jpg"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(wall, "JPEG")
    command = [sys.executable, "-m", "facia_client", str(wall), "--url", shell.served.base]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FACIA_HASH_ID": hash_id}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 4
    assert_like(json.loads(done.stderr), documented(line))


def test_client_page_python_example_runs(shell: Shell) -> None:
    """The example as written, with its hash_id and the server's address; the fields its
    comments list are the dataclasses' own."""
    _, hash_id = shell.served.new_tenant()
    text = (REPO / "docs" / "integrator" / "client.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
    script = ADDRESS.sub(shell.served.base, example)
    checks = (
        "import dataclasses\n"
        "assert [f.name for f in dataclasses.fields(verdict)] == {verdict_fields}\n"
        "assert [f.name for f in dataclasses.fields(session)] == {session_fields}\n"
        "assert state['state'] == 'open' and verdict.is_live\n"
        "print('ran')\n"
    )
    fields = {
        name: re.findall(r"\w+", re.findall(rf"# {name}\(([^)]*)\)", example)[0])
        for name in ("Verdict", "Session")
    }
    script += checks.format(verdict_fields=fields["Verdict"], session_fields=fields["Session"])
    done = subprocess.run(
        [sys.executable, "-c", f"hash_id = {hash_id!r}\n{script}"],
        cwd=shell.work,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ran", done.stderr


def test_sessions_page_commands_answer_as_shown(shell: Shell) -> None:
    """The backend's two curl calls; between them the browser's part (a burst of 3 frames,
    as the component sends) is done with the token the first printed."""
    _, shell.env["FACIA_HASH_ID"] = shell.served.new_tenant()
    block = next(b for b in fences(REPO / "docs/integrator/sessions.md") if "curl" in b)
    opened: dict[str, Any] = {}
    steps = transcript(block)
    for command, output in steps:
        shown = documented(output)
        if opened:
            shown_id = re.search(r"/sessions/(\S+)", command).group(1)  # type: ignore[union-attr]  # no match: an error
            command = command.replace(shown_id, opened["session_id"])
        answer = json.loads(shell.run(command))
        assert_like(answer, shown, command)
        if not opened:
            opened = answer
            selfie = requests.post(
                f"{shell.served.base}/sessions/{opened['session_id']}/selfie",
                json={"frames": [data_uri(LIVE_JPG)] * 3},
                headers={"Authorization": f"Bearer {opened['token']}"},
                timeout=60,
            )
            assert selfie.status_code == 202, selfie.text
    assert len(steps) == 2
