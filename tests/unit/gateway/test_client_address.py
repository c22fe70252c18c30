"""The client address (issue 12 item 6): a forwarding header counts only from a proxy named
in COMMONS_TRUSTED_PROXIES, and then only the right-most hop that is not a trusted proxy."""

from __future__ import annotations

import pytest

from credit_commons.gateway.client_address import ClientAddressResolver, rate_limit_key


def xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", v.encode()) for v in values]


def test_no_proxy_is_trusted_by_default_not_even_loopback() -> None:
    resolver = ClientAddressResolver()
    assert resolver.resolve("127.0.0.1", xff("198.51.100.7")) == "127.0.0.1"
    assert resolver.resolve("203.0.113.9", xff("198.51.100.7")) == "203.0.113.9"


def test_an_untrusted_peer_cannot_speak_for_anyone() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("203.0.113.9", xff("198.51.100.7")) == "203.0.113.9"


def test_a_trusted_proxy_names_the_client_right_most_untrusted_first() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8", "192.0.2.1"])
    # The client forged the first hop; our proxies appended the last two.
    headers = xff("6.6.6.6, 198.51.100.7", "192.0.2.1")
    assert resolver.resolve("10.1.2.3", headers) == "198.51.100.7"
    assert resolver.resolve("10.1.2.3", xff("198.51.100.7:5411")) == "198.51.100.7"
    assert resolver.resolve("10.1.2.3", xff("[2001:db8::1]:443")) == "2001:db8::1"


def test_only_trusted_hops_leaves_the_left_most() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.1", xff("10.0.0.2, 10.0.0.3")) == "10.0.0.2"
    assert resolver.resolve("10.0.0.1", []) == "10.0.0.1"


@pytest.mark.parametrize("garbage", ["unknown", "not an address", "", "_hidden", "1.2.3.4.5"])
def test_a_hop_that_is_no_address_stops_at_the_last_trusted_one(garbage: str) -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.1", xff(f"198.51.100.7, {garbage}")) == "10.0.0.1"
    assert resolver.resolve("10.0.0.1", xff(f"{garbage}, 10.0.0.9")) == "10.0.0.9"


def test_rfc_7239_forwarded() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"], header="forwarded")
    headers = [
        (b"forwarded", b'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https'),
        (b"x-forwarded-for", b"5.5.5.5"),  # not the header the proxies write: ignored
    ]
    assert resolver.resolve("10.0.0.1", headers) == "2001:db8:cafe::17"
    assert resolver.resolve("10.0.0.1", [(b"forwarded", b"for=_hidden")]) == "10.0.0.1"


def test_ipv4_mapped_peers_are_ipv4() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("::ffff:10.0.0.1", xff("198.51.100.7")) == "198.51.100.7"


def test_ipv6_counts_by_its_64() -> None:
    assert rate_limit_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:2::9") == rate_limit_key("2001:db8:1:2:ffff::1")
    assert rate_limit_key("198.51.100.7") == "198.51.100.7"
    assert rate_limit_key("testclient") == "testclient"
    # A dual-stack socket's IPv4 clients must not share one /64 bucket.
    assert rate_limit_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert rate_limit_key("::ffff:198.51.100.8") != rate_limit_key("::ffff:198.51.100.7")
