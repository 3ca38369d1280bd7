"""bench.load's wrk report: the Lua script's counts against a real server, and the parsing."""

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from bench import load
from tests.conftest import skip_or_fail

LINE = (
    'WRK_JSON {"requests": 10, "duration_us": 2000000, "bytes": 4500, '
    '"errors": {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 0}, '
    '"latency_us": {"min": 900, "mean": 1500.5, "max": 4000, "p50": 1200, "p90": 2500, '
    '"p95": 3000, "p99": 3900}, "statuses": {"201": 7, "422": 3}}'
)


def test_parse_wrk_line_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    result = load.result_of(load.parse_wrk("Running 2s test\n" + LINE + "\n"), 1000, 0.5)
    assert result.requests == 10 and result.successes == 7
    assert result.failures == 4  # three 422s and one read error
    assert result.latency_s["p95"] == pytest.approx(0.003)
    assert result.client_cpu_share(2) == pytest.approx(0.125)
    rps = load.report(result, "title", cores=2)
    assert rps == pytest.approx(5.0)
    out = capsys.readouterr().out
    for row in (
        "| Total Requests Made | 10 |",
        "| Total Failures | 4 |",
        "| 95th Percentile | 3.00ms |",
    ):
        assert row in out
    assert "12.5% of 2 cores" in out


def test_parse_wrk_without_its_line() -> None:
    with pytest.raises(ValueError, match="no WRK_JSON"):
        load.parse_wrk("wrk crashed")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, bytes]] = []
    count = 0

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.command, self.headers["Content-Type"], body))
        type(self).count += 1
        status = 422 if type(self).count % 4 == 0 else 201
        reply = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def test_wrk_script_posts_the_body_and_counts_statuses(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        skip_or_fail("wrk is not installed (apt-get install wrk)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/liveness"
        result = load.load(url, b'{"hash_id": "x"}', 1, 2, tmp_path)
    finally:
        server.shutdown()
    assert _Handler.seen[0] == ("POST", "application/json", b'{"hash_id": "x"}')
    assert result.requests > 4
    assert result.statuses.get(422, 0) >= 1
    assert result.requests - result.successes == result.statuses.get(422, 0)
    assert result.latency_s["min"] <= result.latency_s["p50"] <= result.latency_s["max"]
