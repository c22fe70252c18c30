from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from credit_commons.core.errors import ConfigurationError
from credit_commons.core.net import FetchFailed, OutboundFetcher, UnsafeUrl
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.did_key import encode_did_key
from credit_commons.keys.did_web import (
    DidResolver,
    check_did_web,
    did_web_of,
    did_web_refusal,
    did_web_unresolvable,
    did_web_url,
)
from credit_commons.keys.errors import DidInvalid, DidResolutionFailed
from credit_commons.keys.jwk import public_key_to_jwk

PUBLIC_IP = "93.184.216.34"


def resolver_to(*addresses: str) -> Callable[[str], list[str]]:
    return lambda _host: list(addresses)


def fetcher(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> OutboundFetcher:
    return OutboundFetcher(
        transport=httpx.MockTransport(handler),
        resolver=kw.pop("resolver", resolver_to(PUBLIC_IP)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("did", "url"),
    [
        # did:web method specification §3.2, examples.
        ("did:web:w3c-ccg.github.io", "https://w3c-ccg.github.io/.well-known/did.json"),
        ("did:web:w3c-ccg.github.io:user:alice", "https://w3c-ccg.github.io/user/alice/did.json"),
        ("did:web:example.com%3A3000:user:alice", "https://example.com:3000/user/alice/did.json"),
    ],
)
def test_did_web_url_mapping(did: str, url: str) -> None:
    assert did_web_url(did) == url


@pytest.mark.parametrize(
    "did",
    [
        "did:web:",
        "did:web:exa mple.com",
        "did:web:example.com:..:etc",
        "did:web:-bad.com",
        "did:x:y",
    ],
)
def test_malformed_did_web_is_rejected(did: str) -> None:
    with pytest.raises(DidInvalid):
        did_web_url(did)


@pytest.mark.parametrize(
    "did",
    [
        "did:web:127.0.0.1%3A8300",
        "did:web:127.0.0.1",
        "did:web:10.0.0.7:users:alice",
        # Forms a resolver or URL parser reads as IPv4 too (the last label is a number).
        "did:web:127.1",
        "did:web:2130706433",
        "did:web:0x7f.0.0.1",
        "did:web:0x7f000001%3A443",
        "did:web:example.0X1f",
    ],
)
def test_a_did_web_naming_an_ip_address_is_refused_before_any_fetch(did: str) -> None:
    # did:web §3.1: "The method specific identifier MUST match the common name used in the
    # SSL/TLS certificate, and it MUST NOT include IP addresses."
    def handler(_request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing is fetched")

    with pytest.raises(DidInvalid, match="IP address"):
        did_web_url(did)
    with pytest.raises(DidInvalid, match="IP address"):
        DidResolver(fetcher(handler)).resolve(did)
    # Well-formed all the same: a stored entry naming one is read back (it never resolves).
    check_did_web(did)
    assert "IP address" in (did_web_unresolvable(did) or "")


@pytest.mark.parametrize(
    "did", ["did:web:example.com", "did:web:0x7f.example", "did:web:1.2.3.com", "did:web:a.b0"]
)
def test_a_domain_whose_last_label_is_not_a_number_is_no_ip_address(did: str) -> None:
    assert did_web_unresolvable(did) is None
    did_web_url(did)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://commons.example", None),
        ("https://localhost:8443", None),
        ("https://commons.example:8443/base", "/base/did.json"),
        ("https://2130706433", "IP address"),
        ("https://127.1:8443", "IP address"),
        ("http://commons.example", "not https"),
        ("http://127.0.0.1:8300", "not https"),
        ("https://127.0.0.1:8443", "IP address"),
        ("https://[::1]:8443", "IP address"),
    ],
)
def test_which_public_urls_carry_a_did_web(url: str, refused: str | None) -> None:
    refusal = did_web_refusal(url)
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refused in refusal
        assert url in refusal


@pytest.mark.parametrize(
    ("url", "did"),
    [
        ("https://commons.example", "did:web:commons.example"),
        ("https://commons.example/", "did:web:commons.example"),
        ("https://Commons.EXAMPLE:8443", "did:web:commons.example%3A8443"),
        ("https://bücher.example", "did:web:xn--bcher-kva.example"),
        ("https://BÜCHER.example:8443", "did:web:xn--bcher-kva.example%3A8443"),
        ("https://commons.example/base/x", "did:web:commons.example:base:x"),
    ],
)
def test_the_did_web_of_a_url_is_the_one_read_back_there(url: str, did: str) -> None:
    # One source of truth: did_web_of mints what the platform presents (issuer_did), and
    # did_web_refusal accepts a URL only when did_web_url reads that DID where it is served.
    assert did_web_of(url) == did
    if "/base" in url:
        assert did_web_url(did) == "https://commons.example/base/x/did.json"
        assert "https://commons.example/base/x/.well-known/did.json" in (did_web_refusal(url) or "")
    else:
        assert did_web_refusal(url) is None
        assert (
            did_web_url(did)
            == url.lower().rstrip("/").replace("bücher", "xn--bcher-kva") + "/.well-known/did.json"
        )


def test_a_failed_did_web_fetch_names_the_https_url_tried() -> None:
    handler = lambda _r: httpx.Response(404)  # noqa: E731
    with pytest.raises(DidResolutionFailed) as failed:
        DidResolver(fetcher(handler)).resolve("did:web:verifier.example%3A8443")
    assert "https://verifier.example:8443/.well-known/did.json" in failed.value.detail
    assert "HTTP 404" in failed.value.detail


def _document(did: str, key: PrivateKey) -> dict[str, object]:
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "verificationMethod": [
            {
                "id": f"{did}#key-1",
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": public_key_to_jwk(key.public_key),
            },
            {
                "id": f"{did}#key-2",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": encode_did_key(key.public_key)[len("did:key:") :],
            },
        ],
    }


def test_resolve_did_web_through_injected_transport() -> None:
    did = "did:web:issuer.example:tenants:up"
    key = PrivateKey.generate(KeyType.P256)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=_document(did, key))

    resolver = DidResolver(fetcher(handler))
    assert resolver.resolve(did)["id"] == did
    assert resolver.resolve_key(f"{did}#key-1") == key.public_key
    assert resolver.resolve_key(f"{did}#key-2") == key.public_key
    assert seen[0] == "https://issuer.example/tenants/up/did.json"
    with pytest.raises(DidResolutionFailed):
        resolver.resolve_key(did)  # two methods: a fragment is required
    with pytest.raises(DidResolutionFailed):
        resolver.resolve_key(f"{did}#key-9")


def test_did_key_resolves_locally_without_a_fetcher() -> None:
    key = PrivateKey.generate(KeyType.ED25519)
    did = encode_did_key(key.public_key)
    assert DidResolver().resolve_key(did) == key.public_key
    assert DidResolver().resolve(did)["id"] == did
    with pytest.raises(DidResolutionFailed):
        DidResolver().resolve("did:web:example.com")
    with pytest.raises(DidInvalid):
        DidResolver().resolve("did:ethr:0xabc")


def test_document_for_another_did_is_refused() -> None:
    key = PrivateKey.generate(KeyType.ED25519)
    handler = lambda _r: httpx.Response(200, json=_document("did:web:evil.example", key))  # noqa: E731
    with pytest.raises(DidResolutionFailed):
        DidResolver(fetcher(handler)).resolve("did:web:issuer.example")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fc00::1",
        "fe80::1",
        "100.64.0.1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_ssrf_guard_refuses_non_public_addresses(address: str) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={})

    guarded = fetcher(handler, resolver=resolver_to(PUBLIC_IP, address))
    with pytest.raises(UnsafeUrl):
        guarded.get_json("https://looks-public.example/x")
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeUrl):
        guarded.get_json(f"https://{host}/x")
    assert calls == []
    # Development may allow it explicitly.
    fetcher(handler, resolver=resolver_to(address), allow_private=True).get_json(
        "https://internal.example/x"
    )
    assert len(calls) == 1


def test_ssrf_guard_refuses_http_credentials_redirects_and_large_bodies() -> None:
    ok = lambda _r: httpx.Response(200, json={"a": 1})  # noqa: E731
    with pytest.raises(UnsafeUrl):
        fetcher(ok).get_json("http://issuer.example/x")
    assert fetcher(ok, allow_http=True).get_json("http://issuer.example/x") == {"a": 1}
    with pytest.raises(UnsafeUrl):
        fetcher(ok).get_json("https://user:pw@issuer.example/x")
    with pytest.raises(UnsafeUrl):
        fetcher(ok).get_json("file:///etc/passwd")
    redirect = lambda _r: httpx.Response(302, headers={"Location": "http://127.0.0.1/"})  # noqa: E731
    with pytest.raises(FetchFailed):
        fetcher(redirect).get_json("https://issuer.example/x")
    big = lambda _r: httpx.Response(200, content=b"[" + b"1," * 400_000 + b"1]")  # noqa: E731
    with pytest.raises(FetchFailed):
        fetcher(big).get_json("https://issuer.example/x")
    not_json = lambda _r: httpx.Response(200, content=b"<html>")  # noqa: E731
    with pytest.raises(FetchFailed):
        fetcher(not_json).get_json("https://issuer.example/x")

    def broken(_r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(FetchFailed):
        fetcher(broken).get_json("https://issuer.example/x")


@pytest.mark.parametrize(
    ("url", "resolved", "setting"),
    [
        # Not loopback: each refusal names the setting that would allow it.
        ("http://192.0.2.10:8000/x", None, "COMMONS_INSECURE_ALLOW_HTTP"),
        ("http://issuer.example/x", PUBLIC_IP, "COMMONS_INSECURE_ALLOW_HTTP"),
        ("https://10.0.0.1/x", None, "COMMONS_INSECURE_ALLOW_PRIVATE_NETWORK"),
        ("https://intranet.example/x", "192.168.1.5", "COMMONS_INSECURE_ALLOW_PRIVATE_NETWORK"),
        # A name that resolves to loopback and elsewhere is not loopback.
        ("http://mixed.example/x", "127.0.0.1,10.0.0.1", "COMMONS_INSECURE_ALLOW_HTTP"),
    ],
)
def test_loopback_allowance_refuses_everything_else_naming_the_setting(
    url: str, resolved: str | None, setting: str
) -> None:
    guard = OutboundFetcher(
        resolver=resolver_to(*(resolved or PUBLIC_IP).split(",")), allow_loopback=True
    )
    with pytest.raises(UnsafeUrl) as refused:
        guard.check_url(url)
    assert setting in (refused.value.hint or "")
    guard.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8201/x",
        "http://[::1]:8201/x",
        "https://127.0.0.2/x",
        "http://localhost:8201/",
    ],
)
def test_loopback_allowance_admits_loopback_over_http_and_https(url: str) -> None:
    loopback = resolver_to("127.0.0.1", "::1")
    guard = OutboundFetcher(resolver=loopback, allow_loopback=True)
    guard.check_url(url)
    guard.close()
    # Without the allowance (production), the same URL is refused.
    strict = OutboundFetcher(resolver=loopback)
    with pytest.raises(UnsafeUrl):
        strict.check_url(url)
    strict.close()


@pytest.mark.parametrize("content", [None, b"not a certificate\n"], ids=["missing", "not-pem"])
def test_extra_ca_certificates_that_cannot_be_read_are_a_configuration_error(
    tmp_path: Path, content: bytes | None
) -> None:
    # COMMONS_WALLET_CA_FILE adds CAs; one that cannot be read is refused, never ignored
    # (which would silently fall back to the public roots only).
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_bytes(content)
    with pytest.raises(ConfigurationError, match=r"ca\.pem"):
        OutboundFetcher(ca_file=ca_file)
