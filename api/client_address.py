"""The caller's network address, for throttling guesses per client.

`X-Forwarded-For` is written by whoever sends it, so it is believed only from a proxy listed in
`TRUSTED_PROXIES`: reading it from the right, each hop added by a trusted proxy is skipped, and
the first address no trusted proxy owns is the client. From any other peer the socket's
address is the client, whatever the header says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    peer = scope.get("client")
    address = peer[0] if peer else UNKNOWN
    if not trusted or not _is_trusted(address, trusted):
        return address
    forwarded = b",".join(value for name, value in scope["headers"] if name == b"x-forwarded-for")
    hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = _ip(hop)
        if parsed is None:
            # A trusted proxy writes addresses; anything else came from the client side of
            # the last trusted hop, which is then the best we know.
            return address
        address = str(parsed)
        if not _is_trusted(address, trusted):
            return address
    return address


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    parsed = _ip(address)
    return parsed is not None and any(parsed in network for network in trusted)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed
