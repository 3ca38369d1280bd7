"""/liveness throttles: failed hash_ids per client IP, request rate per tenant (set in the
admin)."""

from typing import Any

import pytest
from django.test import override_settings

from accounts.models import Tenant
from facia_site.env import networks
from tests.accounts.test_admin import INLINE_MANAGEMENT
from tests.conftest import LIVE_JPG, Post, data_uri
from tests.servers.processes import away_from_window_edge

TOO_MANY_FAILURES = {"error": "Too many failed authentication attempts. Try again later."}
LIMIT_REACHED = {"message": "Your request limit has been reached."}


def wrong(post: Post, ip: str = "198.51.100.1") -> Any:
    return post({"hash_id": "guess-" + "x" * 37, "selfie_image": "x"}, REMOTE_ADDR=ip)


@override_settings(AUTH_FAILURE_LIMIT=5, AUTH_FAILURE_WINDOW_S=3600)
def test_failed_hash_ids_are_throttled_per_client(
    tenant: tuple[Tenant, str], post_liveness: Post
) -> None:
    _, secret = tenant
    assert [wrong(post_liveness).status_code for _ in range(5)] == [401] * 5
    blocked = wrong(post_liveness)
    assert blocked.status_code == 429
    assert blocked.json() == TOO_MANY_FAILURES
    assert blocked.json() != LIMIT_REACHED  # never confused with the quota's 429
    assert 1 <= int(blocked["Retry-After"]) <= 3600
    # Once blocked, even the right hash_id is refused from that client: no oracle left.
    good = {"hash_id": secret, "selfie_image": "x"}
    assert post_liveness(good, REMOTE_ADDR="198.51.100.1").status_code == 429
    # Other clients are not affected.
    assert wrong(post_liveness, ip="198.51.100.2").status_code == 401
    assert post_liveness(good, REMOTE_ADDR="198.51.100.2").status_code == 400


@override_settings(AUTH_FAILURE_LIMIT=3, AUTH_FAILURE_WINDOW_S=3600)
def test_an_ipv6_client_is_throttled_as_its_64(
    tenant: tuple[Tenant, str], post_liveness: Post
) -> None:
    """A client taking a new address of its /64 for each guess (it holds 2^64) is throttled
    as one: the 4th wrong hash_id, from a 4th address, is a 429, not a 401."""
    statuses = [wrong(post_liveness, ip=f"2001:db8:5:6::{i + 1:x}").status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert wrong(post_liveness, ip="2001:db8:5:7::1").status_code == 401  # another /64


@override_settings(AUTH_FAILURE_LIMIT=3, AUTH_FAILURE_WINDOW_S=3600)
def test_successes_do_not_count_as_failures(
    tenant: tuple[Tenant, str], post_liveness: Post
) -> None:
    _, secret = tenant
    for _ in range(6):
        assert post_liveness({"hash_id": secret, "selfie_image": "x"}).status_code == 400


PROXIES = networks("10.0.0.0/8, 2001:db8:feed::/48")


def through(post: Post, peer: str, forwarded: str) -> int:
    body = {"hash_id": "nope"}
    status: int = post(body, REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded).status_code
    return status


@override_settings(AUTH_FAILURE_LIMIT=2, AUTH_FAILURE_WINDOW_S=3600, TRUSTED_PROXIES=PROXIES)
def test_client_ip_from_a_trusted_proxy(db: None, post_liveness: Post) -> None:
    def attempt(forwarded: str) -> int:
        return through(post_liveness, "10.0.0.1", forwarded)

    # The proxy appends the address it saw; anything to its left is the client's own claim.
    assert [attempt(f"1.1.1.{n}, 203.0.113.9") for n in range(3)] == [401, 401, 429]
    assert attempt("203.0.113.10") == 401
    # Two proxies in a row: the second's hop is skipped, the address the first saw counts.
    assert attempt("1.1.1.1, 203.0.113.10, 10.9.9.9") == 401
    assert attempt("203.0.113.10, 10.9.9.9") == 429
    assert through(post_liveness, "2001:db8:feed::1", "203.0.113.10") == 429


@override_settings(AUTH_FAILURE_LIMIT=5, AUTH_FAILURE_WINDOW_S=3600, TRUSTED_PROXIES=PROXIES)
def test_a_rotating_header_from_an_untrusted_peer_is_still_throttled(
    db: None, post_liveness: Post
) -> None:
    # TRUSTED_PROXY_COUNT=1 believed the header from anyone: 500 of these never met the throttle.
    answers = [through(post_liveness, "198.51.100.7", f"203.0.113.{n}") for n in range(8)]
    assert answers == [401] * 5 + [429] * 3
    # Nor could that client get the addresses it named blocked: they still reach the check,
    # through the trusted proxy as directly.
    assert through(post_liveness, "10.0.0.1", "203.0.113.3") == 401
    assert through(post_liveness, "203.0.113.3", "") == 401


@override_settings(AUTH_FAILURE_LIMIT=2, AUTH_FAILURE_WINDOW_S=3600, TRUSTED_PROXIES=())
def test_without_trusted_proxies_the_header_is_never_read(db: None, post_liveness: Post) -> None:
    answers = [through(post_liveness, "10.0.0.1", f"203.0.113.{n}") for n in range(3)]
    assert answers == [401, 401, 429]


@pytest.mark.usefixtures("warm_engine")
def test_tenant_rate_limit(make_tenant: Any, post_liveness: Post) -> None:
    _, secret = make_tenant("paced", rate_limit_per_minute=3)
    away_from_window_edge(60)
    body = {"hash_id": secret, "selfie_image": "x"}  # cheap: refused as not base64
    assert [post_liveness(body).status_code for _ in range(3)] == [400] * 3
    refused = post_liveness(body)
    assert refused.status_code == 429
    assert refused.json() == {"error": "Request rate limit exceeded (3 per minute)."}
    assert 1 <= int(refused["Retry-After"]) <= 60
    _, other = make_tenant("unpaced")
    assert post_liveness({"hash_id": other, "selfie_image": data_uri(LIVE_JPG)}).status_code == 201


def test_rate_limit_is_set_in_the_admin(admin_client: Any) -> None:
    tenant = Tenant.objects.create(name="Paced")
    data = {
        "name": "Paced",
        "is_active": "on",
        "request_limit": "",
        "threshold": "0.5",
        "profile": "fast",
        "crop_policy": "judge",
        "challenge": "none",
        "challenge_band": "0.75",
    }
    page = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/change/").content.decode()
    assert 'name="rate_limit_per_minute"' in page
    admin_client.post(
        f"/admin/accounts/tenant/{tenant.pk}/change/",
        {**data, "rate_limit_per_minute": "120", **INLINE_MANAGEMENT},
    )
    tenant.refresh_from_db()
    assert tenant.rate_limit_per_minute == 120
    # 0 would refuse every call (429, a Retry-After never true): refused, the help says how
    # to have no limit or to stop the tenant.
    refused = admin_client.post(
        f"/admin/accounts/tenant/{tenant.pk}/change/",
        {**data, "rate_limit_per_minute": "0", **INLINE_MANAGEMENT},
    )
    assert refused.status_code == 200
    assert "greater than or equal to 1" in refused.content.decode()
    assert "Blank: no limit. To stop a tenant, deactivate it." in refused.content.decode()
    tenant.refresh_from_db()
    assert tenant.rate_limit_per_minute == 120
