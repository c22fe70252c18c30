"""JWK import and export (RFC 7517, RFC 8037) through ``joserfc``.

Only Ed25519 (``OKP``) and P-256 (``EC``) keys are accepted; ``joserfc`` checks lengths and
that EC points are on the curve.  Key ids are RFC 7638 thumbprints.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

from credit_commons.core.cache import BoundedCache
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.errors import ValidationError
from credit_commons.keys.algorithms import PrivateKey, PublicKey
from credit_commons.keys.errors import KeyInvalid

__all__ = [
    "private_key_from_jwk",
    "private_key_to_jwk",
    "public_key_from_jwk",
    "public_key_to_jwk",
    "thumbprint",
]

_PUBLIC_MEMBERS = {"kty", "crv", "x", "y"}


def _import(jwk: Any) -> OKPKey | ECKey:
    if not isinstance(jwk, dict):
        raise KeyInvalid("a JWK must be a JSON object")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "OKP" and crv == "Ed25519":
            return OKPKey.import_key(jwk)
        if kty == "EC" and crv == "P-256":
            return ECKey.import_key(jwk)
    except (ValueError, TypeError, KeyError, JoseError) as e:
        raise KeyInvalid("malformed JWK") from e
    raise KeyInvalid("only OKP/Ed25519 and EC/P-256 JWKs are accepted")


def public_key_from_jwk(jwk: Any) -> PublicKey:
    """Parse a public JWK.  A JWK carrying a private part (``d``) is refused here.

    Parsed keys are remembered (a holder's key is parsed on every issuance and every
    presentation): JWKs whose members are all strings are looked up by those members.

    Raises :class:`KeyInvalid`.
    """
    if isinstance(jwk, dict) and "d" in jwk:
        raise KeyInvalid("expected a public JWK but it contains a private key")
    if isinstance(jwk, dict) and all(type(k) is str and type(v) is str for k, v in jwk.items()):
        members = tuple(sorted(jwk.items()))
        found = _PARSED.get(members)
        if found is None:
            found = _public_key_from_members(members)
            _PARSED.put(members, found)
        return found
    return PublicKey.from_cryptography(_import(jwk).public_key)


# Parsed keys by their JWK members.  The JWKs come from requests (holder keys), so the
# cache is bounded in bytes too: a JWK may carry members of any length.
_PARSED: BoundedCache[tuple[tuple[str, str], ...], PublicKey] = BoundedCache(
    max_entries=4096,
    max_bytes=8 * 1024 * 1024,
    size=lambda members, _key: 200 + sum(len(name) + len(value) for name, value in members),
)


def _public_key_from_members(members: tuple[tuple[str, str], ...]) -> PublicKey:
    fast = _plain_ed25519(members)
    if fast is not None:
        return fast
    return PublicKey.from_cryptography(_import(dict(members)).public_key)


_PLAIN_OKP_MEMBERS = frozenset({"kty", "crv", "x", "kid"})


def _plain_ed25519(members: tuple[tuple[str, str], ...]) -> PublicKey | None:
    # A holder's key is usually {"crv", "kty", "x"}, parsed once per credential issued to a
    # new holder: read it directly (joserfc's import costs six times as much).  Anything
    # else, and any x that is not canonical base64url of 32 bytes, takes the joserfc path,
    # so the verdicts and errors stay joserfc's; a property test holds the two together.
    jwk = dict(members)
    if (
        jwk.get("kty") != "OKP"
        or jwk.get("crv") != "Ed25519"
        or not jwk.keys() <= _PLAIN_OKP_MEMBERS
    ):
        return None
    try:
        raw = b64url_decode(jwk["x"])
    except (KeyError, ValueError, ValidationError):  # ValueError: a non-ASCII x
        return None
    if len(raw) != 32:
        return None
    return PublicKey.from_cryptography(ed25519.Ed25519PublicKey.from_public_bytes(raw))


def private_key_from_jwk(jwk: Any) -> PrivateKey:
    """Parse a private JWK (with ``d``).  Raises :class:`KeyInvalid`."""
    key = _import(jwk)
    if not key.is_private:
        raise KeyInvalid("the JWK has no private part")
    private = key.private_key
    if private is None:  # pragma: no cover - joserfc guarantees it for private keys
        raise KeyInvalid("the JWK has no private part")
    return PrivateKey(private)  # type: ignore[arg-type]


def _joserfc_key(key: PublicKey | PrivateKey) -> OKPKey | ECKey:
    native = key.cryptography_key
    if isinstance(native, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return OKPKey.import_key(native)
    return ECKey.import_key(native)


def public_key_to_jwk(key: PublicKey, **members: str) -> dict[str, str]:
    """The public JWK of ``key``, with extra members such as ``kid``, ``alg``, ``use``."""
    exported = _joserfc_key(key).as_dict(private=False)
    jwk = {k: str(v) for k, v in exported.items() if k in _PUBLIC_MEMBERS}
    jwk.update(members)
    return jwk


def private_key_to_jwk(key: PrivateKey) -> dict[str, str]:
    """The private JWK of ``key``.  Secret: never log it."""
    return {k: str(v) for k, v in _joserfc_key(key).as_dict(private=True).items()}


def thumbprint(key: PublicKey) -> str:
    """The RFC 7638 SHA-256 thumbprint of ``key``, base64url."""
    return str(_joserfc_key(key).thumbprint())
