"""The WSGI application called in-process as gunicorn calls it, and what a call leaves to the
cyclic garbage collector (tests/liveness/test_memory.py, tests/capture/test_capture_memory.py)."""

import gc
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.request import Request

from facia_site.wsgi import application


@contextmanager
def own_connection() -> Iterator[None]:
    """As Django's test client: the test's transaction survives the request signals."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def wsgi_call(path: str, data: bytes, method: str = "POST", **headers: str) -> int:
    """A JSON request through the WSGI application as gunicorn would; the status code.
    ``headers`` are WSGI environ keys (``HTTP_AUTHORIZATION=...``)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        **headers,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
    }
    status: list[str] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(s)

    with own_connection():
        result = application(environ, start_response)
        try:
            b"".join(result)
        finally:
            result.close()
    return int(status[0].split()[0])


@contextmanager
def saved_garbage() -> Iterator[list[object]]:
    """Cyclic garbage made inside the block (collector paused), kept for inspection."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield gc.garbage
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        gc.set_debug(0)
        if enabled:
            gc.enable()


def left_to_the_collector(call: Callable[[], int]) -> tuple[int, list[object]]:
    """``call()``'s status and the requests (Django's or DRF's) it left to the cyclic GC."""
    try:
        with saved_garbage() as found:
            status = call()
        return status, [o for o in found if isinstance(o, WSGIRequest | Request)]
    finally:
        gc.garbage.clear()
