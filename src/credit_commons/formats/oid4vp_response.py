"""OpenID4VP 1.0 responses, pure: the ``vp_token`` (§8.1), what a wallet posts to the
response URI with ``direct_post`` (§8.2) and, encrypted, with ``direct_post.jwt`` (§8.3).

Encryption is ``ECDH-ES`` on P-256 with ``A128GCM`` or ``A256GCM``, through joserfc, the
only JWE this platform makes or reads; no compression (``zip``), a bounded size, and one
opaque error for every decryption failure.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from credit_commons.core.encoding import JsonObject, canonical_json, json_decode
from credit_commons.core.errors import CommonsError
from credit_commons.formats.jws import decode_json_object
from credit_commons.formats.oid4vp_errors import (
    AuthorizationRequestInvalid,
    ResponseDecryptionFailed,
    ResponseInvalid,
)

_ERROR_CODE: Final = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")

__all__ = [
    "ENCRYPTION_ALG",
    "ENCRYPTION_ENCS",
    "MAX_RESPONSE_CHARS",
    "AuthorizationResponse",
    "Presentation",
    "VpToken",
    "decrypt_response",
    "encrypt_response",
    "new_response_encryption_key",
    "parse_authorization_response",
    "parse_vp_token",
]

ENCRYPTION_ALG: Final = "ECDH-ES"
ENCRYPTION_ENCS: Final = ("A128GCM", "A256GCM")
#: The longest encrypted response or VP Token read (characters).
MAX_RESPONSE_CHARS: Final = 512 * 1024


# --- The response (§8) -------------------------------------------------------------------


_QUERY_ID: Final = re.compile(r"[A-Za-z0-9_-]+")
Presentation = str | JsonObject


@dataclass(frozen=True, slots=True)
class VpToken:
    """A ``vp_token`` (§8.1): per Credential Query id a non-empty list of presentations
    (strings; objects for formats such as ``ldp_vc``)."""

    presentations: Mapping[str, tuple[Presentation, ...]]

    def to_json(self) -> JsonObject:
        """The token as its JSON object."""
        return {k: list(v) for k, v in self.presentations.items()}


def _decoded(value: object, name: str) -> object:
    # A response member as decoded JSON: a form post carries it as a JSON string (§8.1),
    # bounded before it is parsed.
    if not isinstance(value, str):
        return value
    if len(value) > MAX_RESPONSE_CHARS:
        raise ResponseInvalid(f"{name} is too long")
    try:
        return json_decode(value)
    except CommonsError as e:
        raise ResponseInvalid(f"{name} is not JSON") from e


def parse_vp_token(value: object) -> VpToken:
    """A ``vp_token``, as decoded JSON or the JSON string of a form post (§8.1): a non-empty
    object of DCQL ids to non-empty arrays of strings or objects.  Raises
    :class:`ResponseInvalid`."""
    value = _decoded(value, "vp_token")
    if not isinstance(value, dict) or not value:
        raise ResponseInvalid("vp_token must be a non-empty JSON object")
    presentations: dict[str, tuple[Presentation, ...]] = {}
    for query_id, items in value.items():
        if not _QUERY_ID.fullmatch(query_id):
            raise ResponseInvalid("a vp_token key is not a credential query id")
        if (
            not isinstance(items, list)
            or not items
            or not all((isinstance(p, str) and p) or isinstance(p, dict) for p in items)
        ):
            raise ResponseInvalid(f"vp_token[{query_id}] must be a non-empty array")
        presentations[query_id] = tuple(items)
    return VpToken(presentations)


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """An Authorization Response received at the response URI: either a ``vp_token`` or an
    ``error`` (§8.5), with the ``state`` it carried."""

    vp_token: VpToken | None
    state: str | None
    error: str | None = None
    error_description: str | None = None
    #: The zero-knowledge proofs answering the request's ``zk_predicates``, by predicate id
    #: (this platform's extension; docs/zk.md), as the wallet sent them (checked by the
    #: verifier's step 8).
    zk_proofs: JsonObject | None = None

    def __post_init__(self) -> None:
        if (self.vp_token is None) == (self.error is None):
            raise ValueError("a response carries either a vp_token or an error")


def _response_from(params: Mapping[str, Any]) -> AuthorizationResponse:
    state = params.get("state")
    if state is not None and not isinstance(state, str):
        raise ResponseInvalid("state must be a string")
    error = params.get("error")
    if error is not None:
        description = params.get("error_description")
        if not isinstance(error, str) or not (description is None or isinstance(description, str)):
            raise ResponseInvalid("error and error_description must be strings")
        # RFC 6749 §4.1.2.1 / Appendix A.7: error = 1*NQSCHAR, printable ASCII except the
        # quote and the backslash.
        if not _ERROR_CODE.fullmatch(error):
            raise ResponseInvalid("error must be one or more printable ASCII characters")
        if "vp_token" in params:
            raise ResponseInvalid("a response carries either a vp_token or an error")
        return AuthorizationResponse(None, state, error, description)
    if "vp_token" not in params:
        raise ResponseInvalid("the response has no vp_token")
    proofs = _zk_proofs(params.get("zk_proofs"))
    return AuthorizationResponse(parse_vp_token(params["vp_token"]), state, zk_proofs=proofs)


def _zk_proofs(value: object) -> JsonObject | None:
    # The ZK proofs by predicate id: a JSON object (a JSON string in a form post).
    if value is None:
        return None
    value = _decoded(value, "zk_proofs")
    if not isinstance(value, dict) or not value or len(value) > 16:
        raise ResponseInvalid("zk_proofs must be a JSON object of 1 to 16 proofs")
    if not all(isinstance(k, str) and _QUERY_ID.fullmatch(k) for k in value):
        raise ResponseInvalid("a zk_proofs key is not a predicate id")
    return value


def parse_authorization_response(
    form: Mapping[str, str],
    *,
    decryption_key: Mapping[str, Any] | None = None,
    enc_values: Collection[str] = ENCRYPTION_ENCS,
) -> AuthorizationResponse:
    """Parse what a wallet posted to the response URI (§8.2, §8.3.1).

    ``direct_post``: ``vp_token`` (JSON) and ``state``, or ``error``, ``error_description``
    and ``state``.  ``direct_post.jwt``: ``response``, a JWE decrypted with
    ``decryption_key`` (the verifier's private JWK for this request) whose payload carries
    those members (§8.3: "as top-level JSON members"); a form with ``response`` is refused
    when no key is given, and a plain ``vp_token`` when one is (a verifier that asked for
    encryption accepts no clear text; only an error may come unencrypted, §8.3.1).

    Raises :class:`ResponseInvalid` and :class:`ResponseDecryptionFailed`.
    """
    if "response" in form:
        if decryption_key is None:
            raise ResponseInvalid("an encrypted response was not asked for")
        if "vp_token" in form:
            raise ResponseInvalid("an encrypted response carries no clear vp_token")
        payload = decrypt_response(form["response"], decryption_key, enc_values=enc_values)
        return _response_from(payload)
    response = _response_from(form)
    if decryption_key is not None and response.error is None:
        raise ResponseInvalid("the response must be encrypted")
    return response


# --- Response encryption (§8.3) -----------------------------------------------------------


def new_response_encryption_key(kid: str) -> tuple[JsonObject, JsonObject]:
    """A fresh P-256 key for one request's encrypted response: ``(private JWK, public JWK)``;
    the public one carries ``kid``, ``use: enc`` and ``alg: ECDH-ES`` (§8.3: "The alg
    parameter MUST be present in the JWKs").  The private JWK is a secret."""
    key = ECKey.generate_key("P-256")
    members = {"kid": kid, "use": "enc", "alg": ENCRYPTION_ALG}
    private: JsonObject = {**key.as_dict(private=True), **members}
    public: JsonObject = {**key.as_dict(private=False), **members}
    return private, public


def _import_ec(jwk: Mapping[str, Any], *, private: bool) -> ECKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or (("d" in jwk) is not private):
        raise ValueError("not an EC P-256 key of the right kind")
    key = ECKey.import_key(dict(jwk))
    if not isinstance(key, ECKey):  # pragma: no cover - import_key's type
        raise ValueError("not an EC key")
    return key


def encrypt_response(payload: Mapping[str, Any], verifier_jwk: Mapping[str, Any], enc: str) -> str:
    """Encrypt a response payload to the verifier's key as a compact JWE (§8.3): ``alg``
    ``ECDH-ES`` (which the JWK must name), ``enc`` ``A128GCM`` or ``A256GCM``, and the JWK's
    ``kid`` in the header.  Raises :class:`AuthorizationRequestInvalid` for a key or
    ``enc`` this platform does not use."""
    if enc not in ENCRYPTION_ENCS:
        raise AuthorizationRequestInvalid(f"enc {enc!r} is not supported")
    if verifier_jwk.get("alg") != ENCRYPTION_ALG:
        raise AuthorizationRequestInvalid("the verifier's JWK does not name alg ECDH-ES")
    try:
        key = _import_ec(verifier_jwk, private=False)
    except (ValueError, TypeError, KeyError, JoseError) as e:
        raise AuthorizationRequestInvalid("the verifier's JWK is not a P-256 public key") from e
    header: JsonObject = {"alg": ENCRYPTION_ALG, "enc": enc}
    if isinstance(verifier_jwk.get("kid"), str):
        header["kid"] = verifier_jwk["kid"]
    return jwe.encrypt_compact(
        header, canonical_json(dict(payload)), key, algorithms=[ENCRYPTION_ALG, enc]
    )


def decrypt_response(
    token: object,
    private_jwk: Mapping[str, Any],
    *,
    enc_values: Collection[str] = ENCRYPTION_ENCS,
) -> JsonObject:
    """Decrypt an encrypted response (§8.3) with the verifier's private JWK: a compact JWE
    of at most :data:`MAX_RESPONSE_CHARS`, ``alg`` ``ECDH-ES``, ``enc`` in ``enc_values``
    (of ``A128GCM``/``A256GCM``), no ``zip``, the ``kid`` of the key when the header names
    one, and a plaintext that is an I-JSON object.

    Raises :class:`ResponseDecryptionFailed`, whatever went wrong.
    """
    allowed = [e for e in enc_values if e in ENCRYPTION_ENCS]
    try:
        if not isinstance(token, str) or len(token) > MAX_RESPONSE_CHARS:
            raise ValueError("not a bounded string")
        parts = token.split(".")
        if len(parts) != 5:
            raise ValueError("not a compact JWE")
        header = decode_json_object(parts[0], "JWE header")
        if header.get("alg") != ENCRYPTION_ALG or header.get("enc") not in allowed:
            raise ValueError("algorithm refused")
        if "zip" in header or "crit" in header:
            raise ValueError("header refused")
        if "kid" in header and header["kid"] != private_jwk.get("kid"):
            raise ValueError("another key")
        key = _import_ec(private_jwk, private=True)
        plaintext = jwe.decrypt_compact(
            token, key, algorithms=[ENCRYPTION_ALG, header["enc"]]
        ).plaintext
        if plaintext is None:
            raise ValueError("no plaintext")
        payload = json_decode(plaintext)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except (ValueError, TypeError, KeyError, JoseError, CommonsError) as e:
        raise ResponseDecryptionFailed() from e
    return payload
