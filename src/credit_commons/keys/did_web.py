"""``did:web`` resolution (W3C CCG did:web method spec §3.2) and a resolver for both methods.

``did:web:example.com`` → ``https://example.com/.well-known/did.json``;
``did:web:example.com:user:alice`` → ``https://example.com/user/alice/did.json``; a port is
written percent-encoded (``did:web:localhost%3A8443``).  Fetching goes through the SSRF
guard of :mod:`credit_commons.core.net`.

The method names a domain and is read over https only (§3.1: "The method specific
identifier MUST match the common name used in the SSL/TLS certificate, and it MUST NOT
include IP addresses"; §3.2 Read: the identifier becomes an ``https://`` URL), so a site
served over http, or at an IP address, has no did:web (:func:`did_web_refusal`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError
from credit_commons.core.net import OutboundFetcher
from credit_commons.keys.algorithms import PublicKey
from credit_commons.keys.did_key import decode_did_key, did_key_document
from credit_commons.keys.errors import DidInvalid, DidResolutionFailed, KeyInvalid
from credit_commons.keys.jwk import public_key_from_jwk

__all__ = [
    "DidResolver",
    "check_did_web",
    "did_web_of",
    "did_web_refusal",
    "did_web_unresolvable",
    "did_web_url",
    "method_key",
]

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=@-]+")
_METHOD = "did:web:"


def did_web_url(did: str) -> str:
    """The HTTPS URL of the DID document of a ``did:web``.  Raises :class:`DidInvalid` for
    a malformed one and for one naming no domain (:func:`did_web_unresolvable`)."""
    host, path = _parse(did)
    refusal = _host_refusal(host)
    if refusal is not None:
        raise DidInvalid(refusal)
    suffix = "/".join(path) if path else ".well-known"
    return f"https://{host}/{suffix}/did.json"


def check_did_web(did: str) -> None:
    """Raises :class:`DidInvalid` when ``did`` is not a well-formed ``did:web``; one that is
    well-formed but names no domain passes (:func:`did_web_unresolvable` says so) — what a
    stored or received identifier is read with, so that such an entry only never
    resolves."""
    _parse(did)


def did_web_unresolvable(did: str) -> str | None:
    """Why the well-formed ``did:web`` ``did`` can never be resolved (its host is no domain
    name: §3.1 "MUST NOT include IP addresses"), or None.  Raises :class:`DidInvalid` for a
    malformed one."""
    return _host_refusal(_parse(did)[0])


def _parse(did: str) -> tuple[str, list[str]]:
    if not did.startswith(_METHOD):
        raise DidInvalid("not a did:web")
    parts = did[len(_METHOD) :].split("#", 1)[0].split(":")
    host = unquote(parts[0])
    if not _HOST.fullmatch(host):
        raise DidInvalid("did:web has an invalid host")
    path = [unquote(p) for p in parts[1:]]
    if any(not _SEGMENT.fullmatch(p) or p in {".", ".."} for p in path):
        raise DidInvalid("did:web has an invalid path")
    return host, path


def _host_refusal(host: str) -> str | None:
    # ``host`` matched _HOST: dot-separated labels, maybe a port.  A domain name's last
    # label (its top-level domain) is never numeric (RFC 3696 §2); a host whose last label
    # is a number — decimal, or 0x hexadecimal — is read as an IPv4 address by resolvers
    # and URL parsers (WHATWG URL "ends in a number": 10.0.0.7, 127.1, 2130706433,
    # 0x7f.0.0.1), and did:web "MUST NOT include IP addresses" (§3.1).  IPv6 literals
    # cannot match _HOST at all.
    last = host.rsplit(":", 1)[0].rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.fullmatch(last):
        return f"did:web names {host}, which is an IP address, not a domain name (§3.1)"
    return None


def did_web_of(url: str) -> str:
    """The ``did:web`` naming the site at ``url`` (§3.1): its host lower-cased and, for an
    internationalized name, in punycode; a port percent-encoded; each path segment after
    a colon.  Raises nothing: whether that DID can be read back at the site is
    :func:`did_web_refusal`'s question."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    with contextlib.suppress(UnicodeError):  # left as is: did_web_url refuses non-ASCII
        host = host.encode("idna").decode("ascii")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}%3A{port}"
    segments = [quote(unquote(s), safe="") for s in parts.path.split("/") if s]
    return ":".join([f"{_METHOD}{netloc}", *segments])


def did_web_refusal(url: str) -> str | None:
    """Why the site at ``url`` (a platform's public URL, serving its DID document at
    ``/.well-known/did.json`` under it) has no ``did:web`` a resolver can read, or None
    when :func:`did_web_of` names one that :func:`did_web_url` reads back where it is
    served: the method is read over https only (§3.2), names a domain, never an IP address
    (§3.1), and a DID with a path is read at ``<path>/did.json``, not under
    ``.well-known``.  Raises nothing."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return f"did:web is read over https only, and {url} is not https"
    if ":" in (parts.hostname or ""):
        return f"did:web names a domain, never an IP address, and {url} names an IPv6 address"
    did = did_web_of(url)
    try:
        read_at = did_web_url(did)
    except DidInvalid as e:
        return f"{url} has no valid did:web ({did}): {e.detail}"
    origin = did_web_url(did_web_of(f"https://{parts.netloc}"))  # the same host: valid
    served = origin.removesuffix("/.well-known/did.json") + unquote(parts.path).rstrip("/")
    served += "/.well-known/did.json"
    if read_at != served:
        return (
            f"{did} is read at {read_at}, and the platform at {url} serves its DID document "
            f"at {served}"
        )
    return None


class DidResolver:
    """Resolves ``did:key`` locally and ``did:web`` through an :class:`OutboundFetcher`."""

    def __init__(self, fetcher: OutboundFetcher | None = None) -> None:
        self._fetcher = fetcher

    def resolve(self, did: str) -> JsonObject:
        """The DID document of ``did``.

        Raises :class:`DidInvalid` for an unsupported or malformed DID and
        :class:`DidResolutionFailed` when a ``did:web`` document cannot be fetched or does
        not describe that DID.
        """
        if did.startswith("did:key:"):
            return did_key_document(did)
        if did.startswith(_METHOD):
            return self._resolve_web(did.split("#", 1)[0])
        raise DidInvalid("only did:key and did:web are supported")

    def _resolve_web(self, did: str) -> JsonObject:
        url = did_web_url(did)
        if self._fetcher is None:
            raise DidResolutionFailed("did:web resolution is not configured")
        try:
            document = self._fetcher.get_json(url)
        except CommonsError as e:
            raise DidResolutionFailed(
                f"did:web document could not be fetched from {url}: {e.detail}"
            ) from e
        if not isinstance(document, dict) or document.get("id") != did:
            raise DidResolutionFailed(f"the did:web document at {url} does not describe {did}")
        return document

    def resolve_key(self, did_url: str) -> PublicKey:
        """The public key a DID URL names (``did#fragment``), or the DID's only key.

        Raises :class:`DidInvalid`, :class:`DidResolutionFailed`, or :class:`KeyInvalid`.
        """
        if did_url.startswith("did:key:"):
            return decode_did_key(did_url)
        did, _, fragment = did_url.partition("#")
        return method_key(self.resolve(did), did, fragment)


def method_key(document: JsonObject, did: str, fragment: str) -> PublicKey:
    """The public key of the verification method ``did#fragment`` of a resolved DID
    document (with an empty ``fragment``: its only method).

    Raises :class:`DidResolutionFailed` or :class:`KeyInvalid`.
    """
    methods = document.get("verificationMethod")
    if not isinstance(methods, list):
        raise DidResolutionFailed("DID document has no verification methods")
    candidates = [
        m
        for m in methods
        if isinstance(m, dict)
        and (not fragment or m.get("id") in {f"{did}#{fragment}", f"#{fragment}"})
    ]
    if len(candidates) != 1:
        raise DidResolutionFailed("DID URL does not name exactly one verification method")
    return verification_method_key(candidates[0], did)


def verification_method_key(method: Mapping[str, Any], did: str) -> PublicKey:
    """The public key of one verification method of ``did``'s document (``publicKeyJwk``,
    or ``publicKeyMultibase`` as a Multikey).

    Raises :class:`DidResolutionFailed` (another controller) or :class:`KeyInvalid`.
    """
    if method.get("controller") not in (None, did):
        raise DidResolutionFailed("verification method has another controller")
    jwk = method.get("publicKeyJwk")
    if jwk is not None:
        return public_key_from_jwk(jwk)
    multibase = method.get("publicKeyMultibase")
    if isinstance(multibase, str):
        # Multikey: the same multicodec encoding as did:key.
        return decode_did_key("did:key:" + multibase)
    raise KeyInvalid("verification method has no supported public key form")
