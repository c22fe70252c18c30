"""Compact JWS (RFC 7515 §7.1): the platform's one parser and one signer.

Every compact JWS the platform reads — client assertions, access tokens, consent artefacts,
holder proofs, OID4VCI proofs, status-list tokens, VC-JWTs, predicate attestations, Key
Binding JWTs — is parsed by :func:`parse_compact`, so the same rules hold everywhere:

1. exactly three parts separated by two dots, ASCII only (§7.1); the header and payload
   non-empty, and the signature too — but that is checked after the header's policy, so an
   unsecured token (``alg: none``, empty signature, §6) is refused for its ``alg`` (§5.2
   validates the header before the signature);
2. each part strict base64url: no padding, nothing outside the alphabet, canonical trailing
   bits (§2, RFC 4648 §5), so one token has exactly one spelling;
3. the header and the payload are I-JSON objects (RFC 7493): a duplicate member name is an
   error (§4: "MUST reject", or the last one silently wins), as are NaN and deep nesting;
4. ``alg`` is on the allow-list the *caller* gives (RFC 8725 §3.1): ``none``, HMAC and
   anything unknown are refused before any key is looked up;
5. ``crit`` (§4.1.11): every extension it lists must be understood by the caller, present in
   the header and not a registered name; the platform understands none, so in practice a
   token with ``crit`` is refused;
6. header parameters the caller refuses (by default those that would let a token choose its
   own key, RFC 8725 §3.10) are refused.

Hand-written rather than through joserfc because the signer may be an HSM key that JOSE
libraries cannot hold; the primitives stay the keys domain's (:class:`SignatureVerifier` and
:class:`JwsSigner` are the shapes of its ``PublicKey`` and ``Signer``).  Each caller maps
:class:`JwsInvalid` to its own error at its boundary.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from credit_commons.core.encoding import (
    JsonObject,
    b64url_decode,
    b64url_encode,
    canonical_json,
    json_decode,
)
from credit_commons.core.errors import CommonsError, IntegrityError

__all__ = [
    "EMBEDDED_KEY_HEADERS",
    "REGISTERED_HEADERS",
    "CompactJws",
    "JwsAlgorithmRefused",
    "JwsCritNotUnderstood",
    "JwsHeaderRefused",
    "JwsInvalid",
    "JwsMalformed",
    "JwsSigner",
    "SignatureVerifier",
    "check_header",
    "decode_json_object",
    "parse_compact",
    "sign_compact",
    "verify_compact",
]

#: Header parameters that carry or point at a key (RFC 7515 §4.1.2-§4.1.8): a token that
#: brings its own key proves nothing (RFC 8725 §3.10), so they are refused unless a caller
#: (an OID4VCI proof, whose ``jwk`` *is* the holder key) says otherwise.
EMBEDDED_KEY_HEADERS: Final = frozenset({"jwk", "jku", "x5u", "x5c"})

#: The header parameter names RFC 7515 §4.1 registers; ``crit`` must not list them (§4.1.11).
REGISTERED_HEADERS: Final = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"}
)


class JwsInvalid(IntegrityError):
    """A compact JWS that is malformed, refused by policy, or whose signature does not verify."""

    code = "credential.jws_invalid"
    title = "Invalid JWS"


class JwsMalformed(JwsInvalid):
    """Not a compact JWS: wrong shape, non-canonical base64url, JSON that is not an I-JSON
    object (duplicate member names included)."""


class JwsAlgorithmRefused(JwsInvalid):
    """The header's ``alg`` is missing or not on the caller's allow-list (RFC 8725 §3.1).

    Carries the keys domain's code, which is what a refused ``alg`` has always answered."""

    code = "key.algorithm_not_allowed"
    title = "Algorithm not allowed"


class JwsHeaderRefused(JwsInvalid):
    """A ``crit`` extension the caller does not understand (RFC 7515 §4.1.11), or a header
    parameter the caller refuses (a key embedded in the token)."""


class JwsCritNotUnderstood(JwsHeaderRefused):
    """A ``crit`` header that is malformed or lists an extension the caller does not
    understand (RFC 7515 §4.1.11: the JWS "MUST be rejected")."""


class SignatureVerifier(Protocol):
    """What verifies a signature: the keys domain's ``PublicKey``."""

    def verify(self, alg: object, data: bytes, signature: bytes) -> None:
        """Raise unless ``signature`` is a valid ``alg`` signature over ``data``."""


class JwsSigner(Protocol):
    """What signs: the keys domain's ``Signer`` (possibly an HSM key)."""

    @property
    def alg(self) -> str:
        """The JOSE ``alg`` of the signatures this signer makes."""

    def sign(self, data: bytes) -> bytes:
        """The signature over ``data``."""


@dataclass(frozen=True, slots=True)
class CompactJws:
    """A parsed compact JWS whose shape and header passed :func:`parse_compact`; its
    signature is NOT verified until :meth:`verify` returns."""

    header: JsonObject
    payload_segment: str
    signing_input: bytes
    signature: bytes
    _payload: list[JsonObject] = field(default_factory=list, repr=False, compare=False)

    @property
    def payload(self) -> JsonObject:
        """The payload, an I-JSON object (decoded once, on first use when the token was
        parsed with ``decode_payload=False``).  Raises :class:`JwsMalformed`."""
        if not self._payload:
            self._payload.append(decode_json_object(self.payload_segment, "payload"))
        return self._payload[0]

    @property
    def alg(self) -> str:
        """The header's ``alg`` (a string on the allow-list the token was parsed with)."""
        alg: str = self.header["alg"]
        return alg

    def verify(self, key: SignatureVerifier) -> None:
        """Verify the signature under ``key``; raises what ``key.verify`` raises (the keys
        domain's ``SignatureInvalid``, ``AlgorithmNotAllowed`` or ``KeyTypeMismatch``)."""
        key.verify(self.alg, self.signing_input, self.signature)


def decode_json_object(segment: str, what: str) -> JsonObject:
    """A strict base64url segment of an I-JSON object (RFC 7515 §5.2 steps 2-4).

    Raises :class:`JwsMalformed`.
    """
    try:
        # json_decode: I-JSON (unique member names, no NaN, no lone surrogates) and bounded
        # nesting (a nesting too deep to follow raised RecursionError, a 500 for a crafted
        # bearer token).
        value = json_decode(b64url_decode(segment))
    except CommonsError as e:
        raise JwsMalformed(f"the JWS {what} is not canonical base64url of I-JSON: {e}") from e
    if not isinstance(value, dict):
        raise JwsMalformed(f"the JWS {what} must be a JSON object")
    return value


def _check_crit(header: Mapping[str, Any], understood: Collection[str]) -> None:
    # RFC 7515 §4.1.11: a non-empty array of distinct names of extensions that are present
    # in the header, are not registered names, and that the recipient understands.
    crit = header["crit"]
    if not isinstance(crit, list) or not crit or not all(isinstance(n, str) for n in crit):
        raise JwsCritNotUnderstood("crit must be a non-empty array of header parameter names")
    if len(set(crit)) != len(crit) or set(crit) & REGISTERED_HEADERS:
        raise JwsCritNotUnderstood("crit must list distinct extension names, not registered ones")
    missing = [n for n in crit if n not in header]
    if missing:
        raise JwsCritNotUnderstood(f"crit lists {missing} that the header does not carry")
    unknown = sorted(set(crit) - set(understood))
    if unknown:
        raise JwsCritNotUnderstood(f"critical extensions {unknown} are not understood")


def check_header(
    header: Mapping[str, Any],
    *,
    algs: Collection[str],
    refused_headers: Collection[str] = EMBEDDED_KEY_HEADERS,
    understood_crit: Collection[str] = (),
) -> str:
    """Steps 4-6 of the module over a decoded JOSE header (of a compact JWS, or the union of
    the protected and unprotected headers of a JWS JSON Serialization); returns its ``alg``.

    Raises :class:`JwsMalformed` (no ``alg``), :class:`JwsAlgorithmRefused`,
    :class:`JwsCritNotUnderstood` or :class:`JwsHeaderRefused`.
    """
    # 4. alg is required (§4.1.1) and on the caller's allow-list (§5.2 step 8, RFC 8725 §3.1).
    if "alg" not in header:
        raise JwsMalformed("the JWS header has no alg")
    alg = header["alg"]
    if not isinstance(alg, str) or alg not in algs:
        raise JwsAlgorithmRefused(f"alg {alg!r} is not accepted")
    # 5. Critical extensions (§4.1.11, §5.2 step 5).
    if "crit" in header:
        _check_crit(header, understood_crit)
    # 6. Header parameters the caller refuses.
    refused = sorted(set(refused_headers) & set(header))
    if refused:
        raise JwsHeaderRefused(f"header parameters {refused} are not accepted")
    return alg


def parse_compact(
    token: object,
    *,
    algs: Collection[str],
    refused_headers: Collection[str] = EMBEDDED_KEY_HEADERS,
    understood_crit: Collection[str] = (),
    max_chars: int | None = None,
    decode_payload: bool = True,
) -> CompactJws:
    """Parse a compact JWS strictly (the module's steps 1-6), without verifying it.

    ``algs`` is the caller's ``alg`` allow-list; ``refused_headers`` the header parameters
    it refuses; ``understood_crit`` the ``crit`` extensions it implements; ``max_chars`` an
    optional bound on the token's length.  With ``decode_payload=False`` the payload is
    decoded (and a malformed one refused) only when first read, so a caller can check the
    signature before it parses what the signature covers.  Raises :class:`JwsMalformed`,
    :class:`JwsAlgorithmRefused` or :class:`JwsHeaderRefused` (all :class:`JwsInvalid`).
    """
    # 1. Three ASCII parts, header and payload non-empty (RFC 7515 §7.1, §5.2 step 1).
    if not isinstance(token, str) or not token.isascii():
        raise JwsMalformed("a compact JWS is an ASCII string")
    if max_chars is not None and len(token) > max_chars:
        raise JwsMalformed("the compact JWS is too long")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise JwsMalformed("a compact JWS has three parts, the first two non-empty")
    header_b64, payload_b64, signature_b64 = parts
    # 2-3. Strict base64url of I-JSON objects (§5.2 steps 2-4 and 6-7).
    header = decode_json_object(header_b64, "header")
    payload = [decode_json_object(payload_b64, "payload")] if decode_payload else []
    # 4-6. The header's policy.
    check_header(
        header, algs=algs, refused_headers=refused_headers, understood_crit=understood_crit
    )
    if not signature_b64:  # an unsecured JWS (RFC 7515 §6) with an accepted alg
        raise JwsMalformed("the JWS signature is empty")
    try:
        signature = b64url_decode(signature_b64)
    except CommonsError as e:
        raise JwsMalformed("the JWS signature is not canonical base64url") from e
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return CompactJws(header, payload_b64, signing_input, signature, payload)


def sign_compact(header: Mapping[str, Any], payload: Mapping[str, Any], signer: JwsSigner) -> str:
    """``b64url(header).b64url(payload).b64url(signature)`` over RFC 8785 JSON; ``alg``
    comes from the signer.  Raises what ``signer.sign`` raises."""
    protected = b64url_encode(canonical_json({**header, "alg": signer.alg}))
    body = b64url_encode(canonical_json(dict(payload)))
    signature = signer.sign(f"{protected}.{body}".encode("ascii"))
    return f"{protected}.{body}.{b64url_encode(signature)}"


def verify_compact(
    token: str, key: SignatureVerifier, *, typ: str, algs: Collection[str]
) -> JsonObject:
    """Parse ``token`` (no embedded keys, ``alg`` in ``algs``), check its ``typ`` and verify
    it under ``key``; returns the payload.

    Raises :class:`JwsInvalid` (and what ``key.verify`` raises for the signature).
    """
    jws = parse_compact(token, algs=algs)
    if jws.header.get("typ") != typ:
        raise JwsInvalid("unexpected JWS typ")
    jws.verify(key)
    return jws.payload
