"""Who is calling, by network address: X-Forwarded-For only from a trusted proxy."""

from __future__ import annotations

import ipaddress

import pytest

from api.client_address import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def scope(peer: str | None, *forwarded: str) -> dict[str, object]:
    return {
        "client": (peer, 50000) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No trusted proxy configured, or a peer that is none: the header is ignored.
        ("203.0.113.7", ("198.51.100.1",), "203.0.113.7"),
        # Through one trusted proxy.
        ("10.0.0.2", ("198.51.100.1",), "198.51.100.1"),
        # The client forged a first hop; the proxy appended the real one.
        ("10.0.0.2", ("1.2.3.4, 198.51.100.1",), "198.51.100.1"),
        # Two trusted proxies in a row, and the header split over two lines.
        ("10.0.0.2", ("1.2.3.4, 198.51.100.1", "10.9.9.9"), "198.51.100.1"),
        # Garbage where a proxy would have written an address: the last trusted hop.
        ("10.0.0.2", ("not-an-ip",), "10.0.0.2"),
        # Only trusted hops: the first of them.
        ("10.0.0.2", ("10.1.1.1",), "10.1.1.1"),
        # A trusted peer without the header.
        ("10.0.0.2", (), "10.0.0.2"),
        # IPv6 loopback proxy and an IPv4-mapped client.
        ("::1", ("::ffff:198.51.100.3",), "198.51.100.3"),
        # No peer known at all.
        (None, ("198.51.100.1",), "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: tuple[str, ...], expected: str) -> None:
    assert client_address(scope(peer, *forwarded), PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_believed() -> None:
    assert client_address(scope("10.0.0.2", "198.51.100.1"), ()) == "10.0.0.2"
