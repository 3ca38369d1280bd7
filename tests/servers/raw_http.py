"""Raw-socket HTTP: hand-written request heads, responses read off the socket, and which
worker owns a connection."""

from __future__ import annotations

import json
import os
import socket
from contextlib import suppress
from pathlib import Path

from tests.servers.gunicorn import Gunicorn
from tests.servers.processes import until


def request_head(port: int, length: int | None, request_id: str = "") -> bytes:
    lines = [
        "POST /liveness HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked",
        "Connection: close",
    ]
    if request_id:
        lines.append(f"X-Request-ID: {request_id}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def received(sock: socket.socket) -> bytes:
    """What the server sends on ``sock`` until it closes the connection (or the socket's
    timeout passes)."""
    data = b""
    with suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def read_response(sock: socket.socket) -> tuple[int, dict[str, object] | None]:
    """Status and JSON body of the response; (0, None) when the connection died first."""
    data = received(sock)
    if not data:
        return 0, None
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else None


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names lower-cased) and body of the one response before the server
    closes the connection."""
    head, _, body = received(sock).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ", 2)[1]), headers, body


def connect(port: int, timeout: float = 60) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def owner_of(sock: socket.socket, server: Gunicorn) -> int:
    """The worker that accepted ``sock``'s connection (waits until one has)."""
    client_port = sock.getsockname()[1]
    found: list[int] = []

    def accepted() -> bool:
        inode = _server_side_inode(server.port, client_port)
        if not inode:
            return False
        for pid in server.workers():
            fds = Path(f"/proc/{pid}/fd")
            for fd in fds.iterdir():
                try:
                    if os.readlink(fd) == f"socket:[{inode}]":
                        found.append(pid)
                        return True
                except OSError:
                    continue
        return False

    until(accepted, timeout=120, every=0.02)
    return found[0]


def server_sides(server_port: int) -> dict[int, tuple[int, int]]:
    """The server ends of the loopback connections to ``server_port``, by client port:
    (inode, bytes queued to send). The inode is 0 while the connection is not yet accepted."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues, inode = fields[1], fields[2], fields[4], int(fields[9])
        if int(local.split(":")[1], 16) == server_port:
            found[int(remote.split(":")[1], 16)] = (inode, int(queues.split(":")[0], 16))
    return found


def _server_side_inode(server_port: int, client_port: int) -> int:
    """Inode of the server end of a loopback connection; 0 while it is not yet accepted."""
    return server_sides(server_port).get(client_port, (0, 0))[0]


def all_accepted(server_port: int, socks: list[socket.socket]) -> bool:
    """Whether a worker has accepted every one of ``socks``' connections."""
    sides = server_sides(server_port)
    return all(sides.get(sock.getsockname()[1], (0, 0))[0] for sock in socks)


def all_read(server_port: int, socks: list[socket.socket]) -> bool:
    """Whether a worker has accepted every one of ``socks``' connections and read all they
    sent so far (nothing left in the server end's receive queue)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == server_port:
            found[int(fields[2].split(":")[1], 16)] = (int(fields[9]), fields[4].split(":")[1])
    sides = [found.get(sock.getsockname()[1], (0, "")) for sock in socks]
    return all(inode and int(unread, 16) == 0 for inode, unread in sides)


def oversized_form_post(port: int, path: str, declared: int, session: str = "") -> socket.socket:
    """A connection posting a multipart form to ``path`` that declares ``declared`` bytes and
    sends only its start: a form Django's CSRF check parses (the client sets its own
    csrftoken cookie: anyone can), with the admin session cookie ``session`` if given."""
    cookies = "csrftoken=abcdefghijklmnopqrstuvwxyzABCDEF"
    cookies += f"; sessionid={session}" if session else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: {declared}\r\n"
        f"Cookie: {cookies}\r\nConnection: close\r\n\r\n"
    )
    start = b'--XX\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
    sock = connect(port, timeout=120)
    sock.sendall(head.encode() + start + b"A" * 1000)
    return sock


def status_of_answer(sock: socket.socket) -> int:
    """The status of the response on ``sock``, read to its end; 0 when none came in time."""
    data = received(sock)
    return int(data.split(b" ", 2)[1]) if data else 0
