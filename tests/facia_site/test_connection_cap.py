"""The per-client connection cap counts an IPv6 client by its /64, as the login throttle does:
a home line or a cloud host holds all of its /64, and counted per address one client took
CONNECTIONS_PER_CLIENT connections from each of as many addresses as it liked."""

from typing import Any

from facia_site.worker import OVER_CLIENT_CAP, Admission, Connection, _client_address

CAP = 3


def admitted(admission: Admission, *addrs: Any) -> list[bool]:
    """Whether each peer (a socket address as gunicorn gives it) was admitted."""
    return [
        isinstance(admission.admit(object(), _client_address(addr)), Connection) for addr in addrs
    ]


def test_addresses_of_one_ipv6_64_share_one_cap() -> None:
    admission = Admission(limit=100, per_client=CAP)
    same_64 = [(f"2001:db8:1:2::{i}", 5000, 0, 0) for i in range(1, CAP + 2)]
    assert admitted(admission, *same_64) == [True] * CAP + [False]
    assert admission.admit(object(), _client_address(same_64[-1])) is OVER_CLIENT_CAP
    assert admitted(admission, ("2001:db8:1:3::1", 5000, 0, 0)) == [True]  # another /64


def test_ipv4_peers_are_counted_per_address_also_on_a_dual_stack_socket() -> None:
    admission = Admission(limit=100, per_client=CAP)
    mapped = [(f"::ffff:192.0.2.{i}", 5000, 0, 0) for i in range(1, CAP + 2)]
    plain = [(f"198.51.100.{i}", 5000) for i in range(1, CAP + 2)]
    assert admitted(admission, *mapped, *plain) == [True] * (2 * CAP + 2)
    assert _client_address(mapped[0]) == _client_address(("192.0.2.1", 5000)) == "192.0.2.1"
