"""This platform's trust bundle, as a lender's own verifier takes it (docs/verifier.md,
"Trust bundle"; docs/lenders.md).

The lender pins the key that signs the bundle — the ``did:key`` or public JWK that
``commons verify trust key`` prints on the platform, obtained out of band — and fetches
``/.well-known/trust-bundle`` from the platform it talks to.  The bundle is accepted only
when ``verifier.verify_bundle`` passes under that key (the platform's own code: JWS shape
and ``alg``, ``typ``, the signature, the payload, ``iss`` = the platform's URL, the validity
window) and its version is not below the highest this process accepted before from the
same platform under the same key (rollback refused).  The SDK keeps no state file, so the
highest version lives in a :class:`BundleVersions` — one per process by default.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime

from credit_commons.client.errors import BundleKeyInvalid
from credit_commons.client.http import PlatformFetcher
from credit_commons.core.errors import CommonsError
from credit_commons.keys import PublicKey, decode_did_key, public_key_from_jwk
from credit_commons.keys import thumbprint as key_thumbprint
from credit_commons.verifier import (
    TRUST_BUNDLE_TYP,
    TrustBundle,
    TrustBundleInvalid,
    verify_bundle,
)

__all__ = ["PROCESS_VERSIONS", "TRUST_BUNDLE_PATH", "BundleVersions", "bundle_key", "fetch_bundle"]

TRUST_BUNDLE_PATH = "/.well-known/trust-bundle"
_ACCEPT = f"application/{TRUST_BUNDLE_TYP}, application/jwt;q=0.5"


def bundle_key(text: str) -> PublicKey:
    """The key a lender pins for the bundle: a ``did:key``, or a public JWK as JSON (its
    ``kid`` ignored).  Raises :class:`BundleKeyInvalid` for anything else."""
    hint = "give the did:key or JWK that `commons verify trust key` prints on the platform"
    try:
        if text.startswith("did:key:"):
            return decode_did_key(text)
        jwk = json.loads(text)
        if isinstance(jwk, dict):
            return public_key_from_jwk({k: v for k, v in jwk.items() if k != "kid"})
    except (ValueError, CommonsError) as e:
        raise BundleKeyInvalid("the trust bundle key is not a key", hint=hint) from e
    raise BundleKeyInvalid("the trust bundle key is a did:key or a public JWK", hint=hint)


class BundleVersions:
    """The highest bundle version accepted, per platform and pinned key (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._highest: dict[tuple[str, str], int] = {}

    def highest(self, platform: str, key: PublicKey) -> int:
        """The highest version accepted from ``platform`` under ``key`` (0: none yet)."""
        with self._lock:
            return self._highest.get((platform, key_thumbprint(key)), 0)

    def accepted(self, platform: str, key: PublicKey, version: int) -> None:
        """Remember that ``version`` was accepted (the highest stays the highest)."""
        slot = (platform, key_thumbprint(key))
        with self._lock:
            self._highest[slot] = max(self._highest.get(slot, 0), version)


PROCESS_VERSIONS = BundleVersions()
"""The versions this process accepted (the default of :func:`fetch_bundle`)."""


def fetch_bundle(
    fetcher: PlatformFetcher,
    platform: str,
    key: PublicKey,
    *,
    now: datetime,
    versions: BundleVersions = PROCESS_VERSIONS,
) -> TrustBundle:
    """The platform's trust bundle, fetched from ``platform`` + :data:`TRUST_BUNDLE_PATH`
    and verified under the pinned ``key``, naming ``platform`` as its ``iss``, not older
    than the version ``versions`` accepted last.

    Raises ``TrustBundleInvalid``, ``TrustBundleSignatureInvalid``, ``TrustBundleExpired``,
    ``TrustBundleRollback``, and the fetcher's errors.
    """
    body, _ = fetcher.get_bytes(platform + TRUST_BUNDLE_PATH, accept=_ACCEPT)
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise TrustBundleInvalid("the bundle is not a compact JWS") from e
    bundle = verify_bundle(
        token, key, now=now, last_version=versions.highest(platform, key), iss=platform
    )
    versions.accepted(platform, key, bundle.version)
    return bundle
