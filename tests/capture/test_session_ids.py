"""The session id in every /sessions/{id} path: unknown, malformed, upper case (Django's test
client, real engine)."""

from typing import Any

import pytest
from django.test.client import Client

from tests.capture.sessions import open_session, post, verdict
from tests.conftest import LIVE_JPG, data_uri

pytestmark = pytest.mark.usefixtures("warm_engine")


def test_unknown_and_malformed_session_ids(make_tenant: Any, client: Client) -> None:
    _, secret = make_tenant()
    opened = open_session(client, secret)
    unknown = "00000000-0000-4000-8000-000000000000"
    response = post(client, f"/sessions/{unknown}/selfie", {"selfie_image": "x"}, opened["token"])
    assert (response.status_code, response.json()) == (404, {"error": "Unknown session."})
    assert verdict(client, unknown, secret).status_code == 404
    assert post(client, "/sessions/not-a-uuid/selfie", {}).json() == {"error": "Not found."}


def test_a_session_id_in_upper_case_is_the_same_session(make_tenant: Any, client: Client) -> None:
    """A UUID's hex digits are read in either case (RFC 9562): a backend whose database hands
    the id back in upper case (SQL Server's uniqueidentifier) got 404 "Not found." for its own
    session, on GET and on every token call (Django's uuid converter takes lower case only)."""
    _, secret = make_tenant(request_limit=5)
    opened = open_session(client, secret)
    upper = opened["session_id"].upper()
    read = verdict(client, upper, secret)
    assert read.status_code == 200, read.content
    assert read.json()["session_id"] == opened["session_id"]  # answered in its own form
    token = opened["token"]
    quality = post(
        client, f"/sessions/{upper}/quality", {"selfie_image": data_uri(LIVE_JPG)}, token
    )
    assert quality.status_code == 200, quality.content
    selfie = post(client, f"/sessions/{upper}/selfie", {"selfie_image": data_uri(LIVE_JPG)}, token)
    assert selfie.status_code == 202, selfie.content
    assert verdict(client, upper, secret).json()["state"] == "done"
    mixed = upper[:9] + opened["session_id"][9:]
    assert verdict(client, mixed, secret).json()["state"] == "done"
