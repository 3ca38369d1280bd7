"""Session calls leave no request (or its image) to the cyclic garbage collector."""

import gc
import io
import json
import sys
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIRequest
from rest_framework.request import Request

from capture.service import open_session
from facia_site.wsgi import application
from tests.conftest import LIVE_JPG, data_uri
from tests.test_memory import own_connection, saved_garbage

pytestmark = pytest.mark.usefixtures("warm_engine")


def wsgi_call(path: str, data: bytes, token: str, method: str = "POST") -> int:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
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


@pytest.mark.parametrize(("action", "status"), [("quality", 200), ("selfie", 202)])
def test_session_calls_are_freed_without_the_cyclic_collector(
    tenant: tuple[Any, str], action: str, status: int
) -> None:
    data = json.dumps({"selfie_image": data_uri(LIVE_JPG)}).encode()
    first, second = open_session(tenant[0]), open_session(tenant[0])
    assert wsgi_call(f"/sessions/{first.session.pk}/{action}", data, first.token) == status
    garbage: list[object] = []
    try:
        with saved_garbage() as found:
            url = f"/sessions/{second.session.pk}/{action}"
            assert wsgi_call(url, data, second.token) == status
        garbage = [o for o in found if isinstance(o, WSGIRequest | Request)]
    finally:
        gc.garbage.clear()
    assert garbage == [], f"left to the cyclic GC: {garbage}"
