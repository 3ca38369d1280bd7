"""Session calls leave no request (or its image) to the cyclic garbage collector."""

import json
from typing import Any

import pytest

from accounts.models import HashId
from capture.service import open_session
from tests.conftest import LIVE_JPG, data_uri
from tests.servers.wsgi import left_to_the_collector, wsgi_call

pytestmark = pytest.mark.usefixtures("warm_engine")


def token_call(path: str, data: bytes, token: str) -> int:
    return wsgi_call(path, data, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize(("action", "status"), [("quality", 200), ("selfie", 202)])
def test_session_calls_are_freed_without_the_cyclic_collector(
    tenant: tuple[Any, str], action: str, status: int
) -> None:
    data = json.dumps({"selfie_image": data_uri(LIVE_JPG)}).encode()
    credential = HashId.objects.get(tenant=tenant[0])
    first, second = open_session(tenant[0], credential), open_session(tenant[0], credential)
    assert token_call(f"/sessions/{first.session.pk}/{action}", data, first.token) == status
    url = f"/sessions/{second.session.pk}/{action}"
    answered, garbage = left_to_the_collector(lambda: token_call(url, data, second.token))
    assert answered == status
    assert garbage == [], f"left to the cyclic GC: {garbage}"
