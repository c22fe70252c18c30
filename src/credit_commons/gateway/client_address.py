"""Who is calling: the client address, decided once per request, in one place.

A forwarding header counts only when the connection comes from a proxy the operator named
(``COMMONS_TRUSTED_PROXIES``: addresses or CIDRs; none by default, loopback included), and
then only the hops those proxies appended: the header is read right to left, skipping
trusted proxies, and the first address that is not one of them is the client (the
"right-most untrusted" rule; RFC 7239 §5.2 and §7.4 say why the left-most value cannot be
believed).  Anything a client wrote itself stays to the left of that point and is ignored,
so a spoofed ``X-Forwarded-For`` cannot escape a per-address limit.

Only one header is read, the one the proxies write (``COMMONS_FORWARDED_HEADER``): a proxy
that appends to ``X-Forwarded-For`` usually passes a client's own ``Forwarded`` through
untouched, and reading both would let that one in.

``commons serve`` turns uvicorn's own proxy-header handling off, so the peer address the
app sees is the socket's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Literal

__all__ = ["ClientAddressResolver", "rate_limit_key"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def _parse(text: str) -> Address | None:
    # An address as proxies write it: bare, [v6], v4:port or [v6]:port.
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _forwarded_for(values: Iterable[str]) -> list[str]:
    # RFC 7239 §4: Forwarded = 1#forwarded-element, each element ;-separated pairs; the
    # "for" parameter names the client the proxy saw.  Elements without one are skipped as
    # unusable (an obfuscated "_hidden" or "unknown" node parses as no address below).
    hops: list[str] = []
    for value in values:
        for element in value.split(","):
            found = ""
            for pair in element.split(";"):
                name, _, token = pair.partition("=")
                if name.strip().lower() == "for":
                    found = token.strip()
            hops.append(found)
    return hops


class ClientAddressResolver:
    """Decides the client address of a request from its peer and forwarding header."""

    def __init__(
        self,
        trusted_proxies: Sequence[str] = (),
        header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for",
    ) -> None:
        self._trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies
        )
        self._header = header.encode("latin-1")

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def is_trusted_peer(self, peer: str | None) -> bool:
        """Whether the connection's peer is one of the trusted proxies (never, with none
        configured, or for a peer that is no address)."""
        if not self._trusted or not peer:
            return False
        address = _parse(peer)
        return address is not None and self._is_trusted(address)

    def resolve(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The client's address: the peer's, unless the peer is a trusted proxy; then the
        right-most hop of the forwarding header that is not a trusted proxy.

        Never raises: a hop that is no address (garbage, an obfuscated RFC 7239 node) ends
        the walk and the last trusted hop seen stands for the client, which limits the
        proxy's traffic together rather than believing a name nobody can check.
        """
        if not self._trusted or not peer:
            return peer or UNKNOWN  # the common case, without parsing anything
        address = _parse(peer)
        if address is None:
            return peer
        if not self._is_trusted(address):
            return str(address)
        values = [v.decode("latin-1") for k, v in headers if k.lower() == self._header]
        if self._header == b"forwarded":
            hops = _forwarded_for(values)
        else:
            hops = [hop for value in values for hop in value.split(",")]
        client = address
        for hop in reversed(hops):
            parsed = _parse(hop)
            if parsed is None:
                break
            client = parsed
            if not self._is_trusted(parsed):
                break
        return str(client)


def rate_limit_key(address: str) -> str:
    """The key an address is counted under: an IPv6 address by its /64 (one subscriber's
    usual allocation, which holds more addresses than any limit could count), an
    IPv4-mapped one (a dual-stack socket's IPv4 client) as its IPv4 address, others as
    they are."""
    if ":" not in address:
        return address
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(parsed, "ipv4_mapped", None)
    if mapped is not None:
        return str(mapped)
    return str(ipaddress.IPv6Network((parsed, 64), strict=False))
