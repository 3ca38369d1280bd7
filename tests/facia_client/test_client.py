"""python -m facia_client with no server behind it: usage errors, unreadable or unknown files,
no answer, a server that never answers (against the real server: tests/system/test_client.py)."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from facia_client import (
    FaciaClient,
    ImageRejected,
    ServiceError,
    Session,
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
    for hash_id in ("€", "x\ny"):  # issued hash_ids are URL-safe ASCII; a header cannot say these
        done = run_cli("session", "get", "some-id", "--url", "http://127.0.0.1:9", hash_id=hash_id)
        assert done.returncode == 2, (hash_id, done.stderr)
    for url in ("http://127.0.0.1:notaport", "http://127.0.0.1:70000", "http://"):
        done = run_cli(str(LIVE_JPG), "--url", url, hash_id="x")
        assert done.returncode == 2, (url, done.stderr)  # a bad argument, not a spoof (1)
        assert "--url" in json.loads(done.stderr)["error"]


@pytest.mark.parametrize(
    "args",
    [
        ("session",),  # no action
        ("session", "get"),  # no SESSION_ID
        ("session", "close"),  # no such action
        (),  # no selfie
        (str(LIVE_JPG), "--timeout"),  # an option without its value
        (str(LIVE_JPG), "--no-such-option"),
    ],
    ids=["session", "session get", "session close", "nothing", "no value", "unknown option"],
)
def test_a_usage_error_is_one_json_object(args: tuple[str, ...]) -> None:
    """docs/integrator/client.md: an error is one JSON object with error, status (null: no
    answer) and exit_code, a usage error too, with no usage line of argparse's beside it."""
    done = run_cli(*args, hash_id="x")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    error = json.loads(done.stderr)  # the whole of stderr: one object
    assert set(error) == {"error", "status", "exit_code"}, error
    assert (error["status"], error["exit_code"]) == (None, 2)
    assert "--help" in error["error"]


@pytest.mark.parametrize("seconds", ["0", "-5", "inf", "nan"])
def test_a_timeout_that_bounds_nothing_is_a_usage_error(seconds: str) -> None:
    """docs/integrator/client.md: exit 2 for bad arguments, `--timeout` bounding the exchange.
    `--timeout 0` (or less) timed out before sending: exit 6, "no answer ... within 0 s", as if
    the service had failed; inf and nan bounded nothing."""
    done = run_cli(str(LIVE_JPG), "--url", "http://127.0.0.1:9", "--timeout", seconds, hash_id="x")
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stderr)["error"]
    assert error.startswith("--timeout must be a number of seconds above 0")
    with pytest.raises(UsageError):
        FaciaClient("http://127.0.0.1:9", "x", timeout=float(seconds))


SECRET = "hid_Zx8QmV2pLr7TnK4s"


@pytest.mark.parametrize(
    "args",
    [
        (str(LIVE_JPG), f"--hash_id={SECRET}"),  # a mistyped option
        (str(LIVE_JPG), "--hash_id", SECRET, "--url", "http://127.0.0.1:9"),
        ("session", SECRET),  # a hash_id where the action was expected
        (str(LIVE_JPG), "--timeout", SECRET),  # where a number was expected
        (str(LIVE_JPG), "--timeout", f"it's {SECRET}"),  # argparse quotes this one with "
        # a hash_id that starts with "-": an unknown option, or -h with a value
        (str(LIVE_JPG), f"-q{SECRET}"),
        (str(LIVE_JPG), f"--h={SECRET}"),  # an abbreviation of --help and --hash-id
        (str(LIVE_JPG), f"-h{SECRET}"),
        (str(LIVE_JPG), f"--help={SECRET}"),
        ("session", "open", f"-q{SECRET}"),
        ("session", "open", f"--h={SECRET}"),
        ("session", "open", f"-h{SECRET}"),
        ("session", "open", f"--help={SECRET}"),
    ],
    ids=[
        "option=value",
        "option value",
        "choice",
        "number",
        "quoted",
        "dash word",
        "abbreviation",
        "-h value",
        "--help=value",
        "session dash word",
        "session abbreviation",
        "session -h value",
        "session --help=value",
    ],
)
def test_a_usage_error_never_echoes_what_was_typed(args: tuple[str, ...]) -> None:
    """argparse's errors quote the values typed; a hash_id typed in the wrong place went to
    stderr (CI logs, scrollback). The option names stay, so the error still says what is
    wrong."""
    done = run_cli(*args, hash_id="x")
    assert done.returncode == 2, done.stderr
    assert SECRET not in done.stderr + done.stdout
    error = json.loads(done.stderr)["error"]
    assert "not shown" in error, error
    if args[1].startswith("--hash_id"):
        assert "--hash_id" in error
    assert "  " not in error, error


def test_only_an_option_name_is_repeated() -> None:
    """An unknown word is named only when it is an option name (or a name before "="); one of
    the other form's options is named too."""
    done = run_cli("session", "open", f"--idempotency-key={SECRET}", hash_id="x")
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stderr)["error"]
    assert error.startswith("unrecognized arguments: --idempotency-key (values not shown)")
    assert SECRET not in error


@pytest.mark.parametrize(
    "before",
    [("--url", "URL"), ("--url=URL",), ("--timeout", "5", "--url", "URL")],
    ids=["--url URL", "--url=URL", "--timeout and --url"],
)
def test_global_options_may_come_before_session(before: tuple[str, ...]) -> None:
    """`--url URL session open` took `session` as the selfie's path: exit 2 and
    "unrecognized arguments:  (values not shown)", an empty list."""
    heads: list[bytes] = []
    body = b'{"session_id": "s", "token": "t", "expires_at": "z", "expires_in": 600}'
    with answering(answer(b"201 Created", body), heads=heads) as url:
        args = [word.replace("URL", url) for word in before]
        done = run_cli(*args, "session", "open", hash_id="x")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["session_id"] == "s"
    assert heads[0].startswith(b"POST /sessions HTTP/1.1")


def test_extra_words_are_a_usage_error_that_names_none() -> None:
    """No option name among them: the error says so, never an empty list of names."""
    done = run_cli(str(LIVE_JPG), "session", "open", hash_id="x")
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stderr)["error"]
    assert error == "unexpected argument(s) (value not shown) (see facia-client --help)"


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


def read_request(conn: socket.socket) -> bytes:
    """The whole request (head, then Content-Length bytes, if any), so closing sends no reset;
    its head."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    declared = re.search(rb"(?i)content-length: *(\d+)", head)
    length = int(declared.group(1)) if declared else 0  # a GET has none
    while len(body) < length:
        body += conn.recv(65536)
    return head


@contextmanager
def answering(
    raw: bytes | Callable[[socket.socket], None],
    then_close: bool = True,
    heads: list[bytes] | None = None,
) -> Iterator[str]:
    """A server that answers one request with ``raw`` (or lets ``raw`` send the answer), then
    closes (or holds the connection until the test ends); the request's head is added to
    ``heads``."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            head = read_request(conn)
            if heads is not None:
                heads.append(head)
            try:
                conn.sendall(raw) if isinstance(raw, bytes) else raw(conn)
            except OSError:
                return  # the client hung up: what these servers are waiting for
            if not then_close:
                done.wait(30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(30)
        listener.close()


BROKEN_ANSWERS = {
    "not HTTP": b"garbage\r\n\r\n",
    "body cut short": b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{",
    "error body cut short": b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 100\r\n\r\n{",
}


@pytest.mark.parametrize("raw", BROKEN_ANSWERS.values(), ids=BROKEN_ANSWERS.keys())
def test_an_answer_it_cannot_read_exits_6(raw: bytes) -> None:
    """client.md: exit 6 for "an answer it does not understand"; an uncaught exception exits
    1, which reads as a spoof verdict."""
    with answering(raw) as url, pytest.raises(ServiceError):
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    with answering(raw) as url:
        done = run_cli(str(LIVE_JPG), "--url", url, "--timeout", "10", hash_id="x")
    assert done.returncode == 6, done.stderr
    assert json.loads(done.stderr)["exit_code"] == 6


def test_an_error_body_that_stalls_times_out() -> None:
    """The head of a 429 arrives, its body never does: Timeout (exit 6), as for a 201."""
    stalled = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 100\r\nRetry-After: 1\r\n\r\n{"
    with answering(stalled, then_close=False) as url, pytest.raises(Timeout, match="within 0.5"):
        FaciaClient(url, "x", timeout=0.5).check(LIVE_JPG)
    with answering(stalled, then_close=False) as url:
        done = run_cli(str(LIVE_JPG), "--url", url, "--timeout", "0.5", hash_id="x")
    assert done.returncode == 6 and "within 0.5 s" in json.loads(done.stderr)["error"]


def test_one_attempt_and_retry_after_is_the_callers() -> None:
    """client.md: the client never retries; a 503's Retry-After is on the error it raises
    (the server below answers one connection only)."""
    body = b'{"error": "Service is busy, try again later."}'
    busy = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Retry-After: 1\r\nX-Request-ID: r1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    with answering(busy) as url, pytest.raises(ServiceError) as caught:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    error = caught.value
    assert (error.status, error.retry_after, error.request_id) == (503, 1.0, "r1")
    assert error.body == {"error": "Service is busy, try again later."}


REPLAYED_BODY = b'{"liveness_result": {"is_live": 1, "liveness_score": 0.98}, "message": "Success"}'
REPLAYED = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nIdempotent-Replayed: true\r\n"
    b"X-Request-ID: r2\r\nContent-Length: %d\r\n\r\n%s" % (len(REPLAYED_BODY), REPLAYED_BODY)
)


def test_an_idempotency_key_is_sent_and_a_replay_told() -> None:
    """The key goes out as Idempotency-Key; a replayed verdict says so (library and CLI)."""
    heads: list[bytes] = []
    with answering(REPLAYED, heads=heads) as url:
        verdict = FaciaClient(url, "x", timeout=10).check(LIVE_JPG, idempotency_key="order 42")
    assert b"Idempotency-Key: order 42" in heads[0].split(b"\r\n")
    assert verdict.replayed and verdict.as_dict()["replayed"] is True
    with answering(REPLAYED, heads=heads) as url:
        done = run_cli(str(LIVE_JPG), "--url", url, "--idempotency-key", "k-1", hash_id="x")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["replayed"] is True
    assert b"Idempotency-Key: k-1" in heads[1].split(b"\r\n")


def test_no_key_sends_no_header() -> None:
    heads: list[bytes] = []
    with answering(REPLAYED, heads=heads) as url:
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    assert b"idempotency-key" not in heads[0].lower()


# "   ": the service behind gunicorn gets the value without its spaces, empty, and says 400.
@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "caf\u00e9", "a\nb", "k1,k2"])
def test_an_invalid_idempotency_key_is_a_usage_error(key: str) -> None:
    with pytest.raises(UsageError, match="idempotency key"):
        FaciaClient("http://127.0.0.1:9", "x").check(LIVE_JPG, idempotency_key=key)
    done = run_cli(
        str(LIVE_JPG), "--url", "http://127.0.0.1:9", f"--idempotency-key={key}", hash_id="x"
    )
    assert done.returncode == 2, done.stderr


def trickle(conn: socket.socket) -> None:
    """A 201's head, then its 1,000-byte body a byte every 0.1 s (100 s in all)."""
    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(1000):
        conn.sendall(b" ")
        time.sleep(0.1)


def test_an_answer_that_trickles_times_out_at_the_deadline() -> None:
    """--timeout bounds the whole answer, not each read: a byte every 0.1 s held a client with
    a 1 s timeout until the server was done (100 s here)."""
    with answering(trickle) as url, pytest.raises(Timeout, match="within 1 s"):
        FaciaClient(url, "x", timeout=1).check(LIVE_JPG)
    with answering(trickle) as url:
        done = run_cli(str(LIVE_JPG), "--url", url, "--timeout", "1", hash_id="x")
    assert done.returncode == 6 and "within 1 s" in json.loads(done.stderr)["error"]


MIB = b"a" * 2**20


def flood(conn: socket.socket) -> None:
    """A 500 that declares 3 GB and sends 256 MiB of it."""
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3000000000\r\n\r\n")
    for _ in range(256):
        conn.sendall(MIB)


# The peak is this process's own (VmHWM, reset by exec): getrusage's ru_maxrss survives exec,
# so a child of a pytest that had loaded the models read 324 MB whatever the client did.
CHECK_AND_PEAK = """
import sys
from facia_client import FaciaClient, ServiceError
try:
    FaciaClient(sys.argv[1], "x", timeout=30).check(sys.argv[2])
except ServiceError as error:
    print(error)
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(peak_kb // 1024)
"""


def test_a_huge_answer_is_refused_in_bounded_memory() -> None:
    """An answer over 1 MiB is a ServiceError once its first MiB is read, not read whole
    into memory (that would be a 620 MB peak for 600 MB sent)."""
    with answering(flood) as url:
        done = subprocess.run(
            [sys.executable, "-c", CHECK_AND_PEAK, url, str(LIVE_JPG)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    error, peak_mb = done.stdout.splitlines()
    assert "over 1048576 bytes" in error
    assert int(peak_mb) < 128, peak_mb  # 256 MiB sent; the client itself is ~20 MB


def answer(status: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


HOSTILE_ANSWERS = {
    "nested 100,000 deep": answer(b"201 Created", b"[" * 100_000 + b"]" * 100_000),
    "error nested deep": answer(b"500 Oops", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    "is_live a string": answer(
        b"201 Created", b'{"liveness_result": {"is_live": "0", "liveness_score": 0.1}}'
    ),
    "is_live 2": answer(
        b"201 Created", b'{"liveness_result": {"is_live": 2, "liveness_score": 1}}'
    ),
    "score NaN": answer(
        b"201 Created", b'{"liveness_result": {"is_live": 1, "liveness_score": NaN}}'
    ),
    "score a string": answer(
        b"201 Created", b'{"liveness_result": {"is_live": 1, "liveness_score": "0.9"}}'
    ),
}


@pytest.mark.parametrize("raw", HOSTILE_ANSWERS.values(), ids=HOSTILE_ANSWERS.keys())
def test_an_answer_of_the_wrong_shape_exits_6(raw: bytes) -> None:
    """Not a verdict: exit 6, never a traceback (exit 1, a spoof) nor a "0" read as live."""
    with answering(raw) as url, pytest.raises(ServiceError):
        FaciaClient(url, "x", timeout=10).check(LIVE_JPG)
    with answering(raw) as url:
        done = run_cli(str(LIVE_JPG), "--url", url, "--timeout", "10", hash_id="x")
    assert done.returncode == 6, done.stderr[-300:]
    assert json.loads(done.stderr)["exit_code"] == 6


def test_a_file_that_is_not_a_regular_one_is_a_usage_error(tmp_path: Path) -> None:
    """A FIFO with no writer hung the client, /dev/zero filled its memory, a folder was
    'Is a directory': each is exit 2 before anything is sent."""
    fifo = tmp_path / "selfie.jpg"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        done = run_cli(str(path), "--url", "http://127.0.0.1:9", hash_id="x")
        assert done.returncode == 2, (path, done.stderr)
        assert "not a regular file" in json.loads(done.stderr)["error"]


def test_a_file_over_64_mib_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as sparse:
        sparse.truncate(2**30)  # 1 GiB, sparse: nothing written to disk
    with pytest.raises(ImageRejected, match="over 64 MiB"):
        FaciaClient("http://127.0.0.1:9", "x").check(huge)
    done = run_cli(str(huge), "--url", "http://127.0.0.1:9", hash_id="x")
    assert done.returncode == 4, done.stderr


def test_a_sessions_repr_leaves_its_token_out() -> None:
    """A backend logging the Session it opened (``log.info("%r", session)``) logged the
    browser's bearer token."""
    token = "tok_Qw3rTy9UiOp2AsDf"
    session = Session("0b1e8f0e-2c1d-4c55-9a43-6d1c1f7e2b11", token, "2026-12-03T21:00:00Z", 300)
    assert token not in repr(session) and token not in str(session)
    assert session.token == token and "0b1e8f0e" in repr(session)
