"""Compact JWS (RFC 7515 §7.1) signed through the project's :class:`Signer`.

Hand-written because the signer may be an HSM key that JOSE libraries cannot hold; the
algorithm policy is the keys domain's (``EdDSA``/``Ed25519``/``ES256`` only).
"""

from __future__ import annotations

from typing import Any

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json, json_decode
from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.keys.algorithms import PublicKey, Signer

__all__ = ["JwsInvalid", "decode_unverified", "sign_compact", "verify_compact"]


class JwsInvalid(IntegrityError):
    """A compact JWS that is malformed or whose signature does not verify."""

    code = "credential.jws_invalid"
    title = "Invalid JWS"


def sign_compact(header: dict[str, Any], payload: dict[str, Any], signer: Signer) -> str:
    """``b64url(header).b64url(payload).b64url(signature)``; ``alg`` comes from the signer."""
    protected = b64url_encode(canonical_json({**header, "alg": signer.alg}))
    body = b64url_encode(canonical_json(payload))
    signature = signer.sign(f"{protected}.{body}".encode("ascii"))
    return f"{protected}.{body}.{b64url_encode(signature)}"


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signing input and signature of a compact JWS — NOT verified.

    Raises :class:`JwsInvalid` for anything malformed.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JwsInvalid("a compact JWS has three non-empty parts")
    try:
        # json_decode: I-JSON, and a nesting too deep to follow is an error like any other
        # (json.loads raised RecursionError, a 500 for a crafted bearer token).
        header = json_decode(b64url_decode(parts[0]))
        payload = json_decode(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except CommonsError as e:
        raise JwsInvalid("malformed JWS") from e
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JwsInvalid("JWS header and payload must be JSON objects")
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify_compact(token: str, key: PublicKey, *, typ: str) -> dict[str, Any]:
    """Verify a compact JWS under ``key`` with the expected ``typ``; returns the payload.

    Raises :class:`JwsInvalid` (and the keys domain's algorithm errors).
    """
    header, payload, signing_input, signature = decode_unverified(token)
    if header.get("typ") != typ:
        raise JwsInvalid("unexpected JWS typ")
    if {"jwk", "jku", "x5u", "x5c"} & set(header):
        raise JwsInvalid("keys embedded in the header are not accepted")
    key.verify(header.get("alg"), signing_input, signature)
    return payload
