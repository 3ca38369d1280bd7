"""The gunicorn worker: gevent reads whole requests, Django serves them one at a time.

A sync worker reads the request itself, so a client trickling its head holds the worker (2
such clients per 2 workers stopped the service for ~60 s at a time). Here every connection's
head and body are read by its own greenlet, within deadlines, and only a complete request
enters Django, one per worker at a time, as before: Django's database connection, the engine
and the quota transaction see exactly what a sync worker gave them. Threading is not
patched, so that connection stays one per worker process (CONN_MAX_AGE keeps its meaning).
"""

import io
from contextlib import nullcontext
from typing import Any

import gevent
from django.conf import settings
from gevent import monkey
from gevent import socket as gsocket
from gevent.lock import BoundedSemaphore, Semaphore
from gunicorn.http.body import Body
from gunicorn.workers.ggevent import GeventWorker

# A request whose head (keepalive setting) or body (this) has not fully arrived in time is
# dropped: at LAN speed a 16 MB body takes well under a second.
BODY_TIMEOUT_S = 10
# Bodies over 1 MB are buffered at most this many at a time per worker (each costs its size a
# few times over until answered); smaller ones are bounded by worker_connections.
LARGE_BODY_BYTES = 1 << 20
LARGE_BODIES_AT_ONCE = 2


class BufferingWorker(GeventWorker):
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
        limit = settings.LIVENESS_MAX_BODY_BYTES
        length = _content_length(req)
        # A declared length over the limit is not read: the view answers 413 from it. A
        # chunked body is read to one byte over the limit, so the view can still tell.
        expected = 0 if length is not None and length > limit else (length or limit + 1)
        slots = self._large_bodies if expected > LARGE_BODY_BYTES else nullcontext()
        with slots:
            if not self._buffer_body(req, expected):
                return False
            with self._django:
                return super().handle_request(listener_name, req, sock, addr)

    def _buffer_body(self, req: Any, size: int) -> bool:
        """Read up to ``size`` bytes of body into memory; False (drop it) when it is late."""
        if not size:
            return True
        try:
            with gevent.Timeout(BODY_TIMEOUT_S):
                data = req.body.read(size)
        except gevent.Timeout:
            self.log.info("dropped a request whose body took over %s s", BODY_TIMEOUT_S)
            return False
        req.body = Body(io.BytesIO(data))
        return True


def patch_io() -> None:
    """Cooperative sockets, select and sleep; threads and their queues stay native (a native
    thread waiting on a patched queue raises LoopExit; see also the module's doc)."""
    monkey.patch_all(thread=False, queue=False)


def _content_length(req: Any) -> int | None:
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            return int(value)
    return None
