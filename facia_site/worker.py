"""The gunicorn worker: gevent reads whole requests, Django serves them one at a time.

A sync worker reads the request itself, so a client trickling its head holds the worker (2
such clients per 2 workers stopped the service for ~60 s at a time). Here every connection's
head and body are read by its own greenlet, within deadlines, and only a complete request
enters Django, one per worker at a time, as before: Django's database connection, the engine
and the quota transaction see exactly what a sync worker gave them. Threading is not
patched, so that connection stays one per worker process (CONN_MAX_AGE keeps its meaning).
"""

import ctypes
import gc
import io
from contextlib import nullcontext
from typing import Any

import gevent
from django.conf import settings
from gevent import monkey
from gevent import socket as gsocket
from gevent.lock import BoundedSemaphore, Semaphore
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.workers.ggevent import GeventWorker

# A request whose head (keepalive setting) or body (this) has not fully arrived in time is
# dropped: at LAN speed a 16 MB body takes well under a second.
BODY_TIMEOUT_S = 10
# Bodies over 1 MB are buffered at most this many at a time per worker (each costs its size a
# few times over until answered); smaller ones are bounded by worker_connections.
LARGE_BODY_BYTES = 1 << 20
LARGE_BODIES_AT_ONCE = 2
# A response the client has not taken in this long is dropped (it is sent after the worker
# has moved on, so only the connection waits).
RESPONSE_TIMEOUT_S = 30


class BufferingWorker(GeventWorker):
    sockets: list[Any]  # set by gunicorn's Worker (untyped)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._django = Semaphore(1)
        self._large_bodies = BoundedSemaphore(LARGE_BODIES_AT_ONCE)

    def patch(self) -> None:
        patch_io()
        # As GeventWorker.patch does: gevent sockets over the inherited listeners.
        self.sockets = [
            gsocket.socket(s.FAMILY, gsocket.SOCK_STREAM, fileno=s.sock.detach())
            for s in self.sockets
        ]

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        # One request per connection, as the sync worker did: the next request may go to
        # the other worker, and an unread body never has to be drained.
        req.must_close = True
        size = _body_to_read(req)
        with self._large_bodies if size > LARGE_BODY_BYTES else nullcontext():
            if not self._buffer_body(req, size, sock):
                raise StopIteration  # closes the connection at once
            # The response is written to memory under the lock and sent after it, so a
            # client that does not read its response holds no worker either.
            response = ResponseBuffer()
            try:
                with self._django:
                    return super().handle_request(listener_name, req, response, addr)
            finally:
                self._send(sock, response.getvalue())
                if size > LARGE_BODY_BYTES:
                    req.body = None  # the last reference to the body
                    release_memory()  # after the response: its client does not wait (~2 ms)

    def _buffer_body(self, req: Any, size: int, sock: Any) -> bool:
        """Read ``size`` bytes of body into memory; False when they came too late."""
        if not size:
            return True
        if req._expected_100_continue:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            req._expected_100_continue = False
        try:
            with gevent.Timeout(BODY_TIMEOUT_S):
                data = _read_body(req, size, sock)
        except gevent.Timeout:
            self.log.info("dropped a request whose body took over %s s", BODY_TIMEOUT_S)
            return False
        # A plain BytesIO over bytes: Django's one read of the whole body is then the same
        # object, not a copy (gunicorn's Body copies a phone photo's 4.4 MB three times).
        req.body = io.BytesIO(data)
        return True

    def _send(self, sock: Any, data: bytes) -> None:
        try:
            with gevent.Timeout(RESPONSE_TIMEOUT_S):
                sock.sendall(data)
        except gevent.Timeout:
            self.log.info("dropped a response not read within %s s", RESPONSE_TIMEOUT_S)
        except OSError:
            pass  # the client went away


LIBC = ctypes.CDLL("libc.so.6")


def release_memory() -> None:
    """Hand the memory of a large body back to the OS once it is answered.

    A phone photo's body is several MB, copied a few times (body, JSON string, base64 bytes);
    freed (the request's own cycles are broken, facia_site.middleware), glibc keeps the heap.
    The collection catches cycles made by code we do not control. A young-generation
    collection plus malloc_trim (about 2 ms) holds a worker near its start-up RSS; doing it
    only for large bodies keeps small requests on a warm heap (serving every allocation from
    fresh mmap pages cost ~40% of a 640x480 request).
    """
    gc.collect(1)
    LIBC.malloc_trim(0)


class ResponseBuffer(io.BytesIO):
    """Stands in for the client socket while Django answers: gunicorn writes here."""

    def sendall(self, data: bytes) -> None:
        self.write(data)

    def send(self, data: bytes) -> int:
        return self.write(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        file.seek(offset)
        return self.write(file.read(count))

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass  # getvalue() is still needed


def _read_body(req: Any, size: int, sock: Any) -> bytes:
    """The body, read straight from the socket into one buffer when its length is declared
    (what gunicorn's parser already holds first): gunicorn's readers copy each chunk two or
    three times, 12 ms of a phone photo's request. A chunked body goes through gunicorn."""
    reader = req.body.reader
    if not isinstance(reader, LengthReader):
        return req.body.read(size)
    body = bytearray(size)
    head = reader.unreader.take_buffered()[:size]
    body[: len(head)] = head
    view, got = memoryview(body), len(head)
    while got < size and (n := sock.recv_into(view[got:])):
        got += n
    # Short when the client closed early: Django then sees a short body, as before.
    return bytes(view[:got]) if got < size else bytes(body)


def _body_to_read(req: Any) -> int:
    """Bytes to buffer: the declared length, none when it is over the service's limit (the
    view answers 413 from Content-Length), one byte over the limit for a chunked body (the
    view can still tell it is too large)."""
    limit = settings.LIVENESS_MAX_BODY_BYTES
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            return int(value) if int(value) <= limit else 0
    return limit + 1 if isinstance(req.body.reader, ChunkedReader) else 0


def patch_io() -> None:
    """Cooperative sockets, select and sleep; threads and their queues stay native (a native
    thread waiting on a patched queue raises LoopExit; see also the module's doc)."""
    monkey.patch_all(thread=False, queue=False)
