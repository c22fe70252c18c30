"""The deployment's signature over its route registry (``surface.py``): a compact JWS
(``typ: surface-registry+jwt``, ``kid`` of the platform's ``surface-registry`` key, Ed25519,
made on first use) whose payload is the registry document with its SHA-256, the issuer (the
public URL) and the time of signing.  A server signs at start-up, verifies what it signed
under the key store's public key before serving it, and serves it at ``GET /v1/routes``
with the key at ``GET /v1/routes/jwks``: an auditor checks that the routes a deployment
serves are the ones of the audited release (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject, canonical_json, sha256_hex
from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.formats.jws import JwsInvalid, parse_compact, sign_compact
from credit_commons.gateway.surface import Registry
from credit_commons.keys import ACCEPTED_ALGS, KeyType, KeyVersion, PublicKey
from credit_commons.keys import service as key_service
from credit_commons.runtime import Runtime

__all__ = [
    "SURFACE_KEY",
    "SURFACE_TYP",
    "RegistryKey",
    "RegistrySignatureInvalid",
    "sign_registry",
    "surface_keys",
    "verify_registry",
]

SURFACE_KEY: Final = "surface-registry"
SURFACE_TYP: Final = "surface-registry+jwt"
_PLATFORM_KEY: Final = key_service.PlatformKey(SURFACE_KEY, KeyType.ED25519, "gateway")
_MAX_CHARS: Final = 1_000_000


class RegistryKey(Protocol):
    """A key that may have signed a registry: a key version, or a public JWK read back."""

    @property
    def kid(self) -> str:
        """The key id the JWS header names."""

    @property
    def public_key(self) -> PublicKey:
        """The public key."""


class RegistrySignatureInvalid(IntegrityError):
    """A signed route registry that does not verify, or covers another registry."""

    code = "surface.registry_signature_invalid"


def surface_keys(session: Session, rt: Runtime) -> list[KeyVersion]:
    """Every version of the registry key (made on first use)."""
    return key_service.platform_key_versions(session, rt, _PLATFORM_KEY)


def sign_registry(session: Session, rt: Runtime, registry: Registry) -> str:
    """``registry`` signed by the deployment's registry key, verified under the key
    store's public key before it is returned.

    Raises what the key store raises, or :class:`RegistrySignatureInvalid` when the
    signature made does not verify.
    """
    signer = key_service.platform_signer(session, rt, _PLATFORM_KEY)
    payload = {
        "iss": rt.settings.public_url.rstrip("/"),
        "iat": int(rt.clock.now().timestamp()),
        "sha256": registry.sha256,
        "registry": registry.document(),
    }
    token = sign_compact({"typ": SURFACE_TYP, "kid": signer.kid}, payload, signer)
    verify_registry(token, surface_keys(session, rt), registry.sha256)
    return token


def verify_registry(token: str, keys: Sequence[RegistryKey], sha256: str) -> JsonObject:
    """The payload of the signed registry ``token``, once: 1 it is a compact JWS with an
    accepted ``alg`` and no embedded key, 2 its ``typ`` is ``surface-registry+jwt``, 3 its
    ``kid`` names one of ``keys``, 4 the signature verifies under that key, 5 the registry
    it carries hashes to its ``sha256``, and that is ``sha256``.

    Raises :class:`RegistrySignatureInvalid`.
    """
    try:
        jws = parse_compact(token, algs=ACCEPTED_ALGS, max_chars=_MAX_CHARS, decode_payload=False)
    except JwsInvalid as e:
        raise RegistrySignatureInvalid("the signed registry is not an acceptable JWS") from e
    if jws.header.get("typ") != SURFACE_TYP:
        raise RegistrySignatureInvalid(f"the JWS typ is not {SURFACE_TYP}")
    key = next((k for k in keys if k.kid == jws.header.get("kid")), None)
    if key is None:
        raise RegistrySignatureInvalid("the signed registry names no known registry key")
    try:
        jws.verify(key.public_key)
        payload = jws.payload
    except (CommonsError, JwsInvalid) as e:
        raise RegistrySignatureInvalid("the registry signature does not verify") from e
    document = payload.get("registry")
    if payload.get("sha256") != sha256 or sha256_hex(canonical_json(document)) != sha256:
        raise RegistrySignatureInvalid("the signed registry is not the one served")
    return payload
