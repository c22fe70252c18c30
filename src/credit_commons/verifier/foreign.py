"""Keys and status of trusted foreign issuers, fetched safely and cached.

For an issuer on the trust list (:mod:`~credit_commons.verifier.trust`):

* an https issuer's keys come from its JWT VC Issuer Metadata (SD-JWT VC draft §5):
  ``https://host[:port]/.well-known/jwt-vc-issuer`` followed by the issuer's path; the
  document's ``issuer`` must be the issuer exactly, and its keys are in ``jwks`` (or at
  ``jwks_uri``); the credential's ``kid`` names one of them;
* a ``did:web``'s keys come from its DID document (``keys.did_web.DidResolver``): ``kid``
  must be a DID URL of that DID (``did#frag`` or ``#frag``);
* a ``did:key`` is its own key (``kid``, if any, must be a DID URL of it);
* status lists go through :class:`~credit_commons.verifier.status_fetch.StatusListFetcher`,
  their signatures checked with the same issuer's keys.

Every fetch goes through the SSRF-guarded :class:`~credit_commons.core.net.OutboundFetcher`;
resolved keys are cached per issuer for ``ttl`` seconds (status lists by their own ``ttl``,
at most ``ttl``); a ``kid`` the cached keys lack is looked up again at most once per
``refetch_after`` seconds per issuer.  Nothing here touches the database: the caller decides trust.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from credit_commons.core.attached import Attached
from credit_commons.core.cache import BoundedCache
from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.status_list import TokenStatus
from credit_commons.keys import (
    DidResolver,
    PublicKey,
    decode_did_key,
    method_key,
    public_key_from_jwk,
    thumbprint,
)
from credit_commons.runtime import Runtime
from credit_commons.verifier.status_fetch import StatusListFetcher, status_list_cache
from credit_commons.verifier.trust import EntryKind, IssuerKind

__all__ = [
    "FOREIGN_ISSUERS",
    "ForeignIssuers",
    "IssuerMetadataInvalid",
    "UnknownForeignKey",
    "foreign_issuers",
]


class IssuerMetadataInvalid(IntegrityError):
    """A foreign issuer's metadata or DID document is not acceptable."""

    code = "credential.issuer_metadata_invalid"
    title = "Issuer metadata not acceptable"


class UnknownForeignKey(IntegrityError):
    """The credential names a key its (trusted) issuer does not publish."""

    code = "credential.issuer_key_unknown"
    title = "Unknown issuer key"


def metadata_url(issuer: str) -> str:
    """The JWT VC Issuer Metadata URL of an issuer URL (SD-JWT VC draft §5: the well-known
    segment goes between the host and the issuer's path).  The scheme is the issuer's: the
    trust list holds https issuers only, and a fetcher refuses http unless allowed (a
    lender's development platform on loopback)."""
    parts = urlsplit(issuer)
    scheme = parts.scheme or "https"
    return f"{scheme}://{parts.netloc}/.well-known/jwt-vc-issuer{parts.path.rstrip('/')}"


class ForeignIssuers:
    """Resolves keys and statuses of foreign issuers through one :class:`OutboundFetcher`."""

    def __init__(
        self,
        fetcher: OutboundFetcher,
        *,
        ttl: float = 300.0,
        refetch_after: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetcher = fetcher
        self._dids = DidResolver(fetcher)
        self._ttl = ttl
        self._refetch_after = min(refetch_after, ttl)
        self._clock = clock
        # issuer -> (expiry, its keys by kid), and issuer -> its status lists.  Issuers come
        # from the credentials presented, so both are bounded (a key is about 200 bytes).
        self._keys: BoundedCache[str, tuple[float, dict[str, PublicKey]]] = BoundedCache(
            max_entries=1024,
            max_bytes=16 * 1024 * 1024,
            size=lambda issuer, entry: len(issuer) + sum(len(k) + 200 for k in entry[1]),
        )
        self._status: BoundedCache[str, StatusListFetcher] = BoundedCache(
            max_entries=1024, max_bytes=1024 * 1024, size=lambda issuer, _f: len(issuer) + 200
        )
        # One bound for the lists of every issuer (each fetcher under its issuer's name).
        self._lists = status_list_cache()

    # -- keys -----------------------------------------------------------------------------

    def key(self, issuer: str, kind: IssuerKind, header: Mapping[str, Any]) -> PublicKey:
        """The key of ``issuer`` that ``header`` names (``kid``).

        Raises :class:`UnknownForeignKey`, :class:`IssuerMetadataInvalid`, and the
        fetcher's ``UnsafeUrl``/``FetchFailed``.
        """
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise UnknownForeignKey("kid must be a string")
        if kind == "did:key":
            if kid is not None and kid.split("#", 1)[0] not in ("", issuer):
                raise UnknownForeignKey("kid is not a key of this did:key")
            try:
                return decode_did_key(issuer)
            except CommonsError as e:
                raise IssuerMetadataInvalid("the did:key is not valid") from e
        keys = self._cached(issuer, kind, kid)
        if kid is None:
            if len(keys) != 1:
                raise UnknownForeignKey("no kid, and the issuer has more than one key")
            return next(iter(keys.values()))
        found = keys.get(kid)
        if found is None:
            raise UnknownForeignKey("the issuer does not publish this key")
        return found

    def _cached(self, issuer: str, kind: IssuerKind, kid: str | None) -> dict[str, PublicKey]:
        entry = self._keys.get(issuer)
        now = self._clock()
        if entry is not None and entry[0] > now:
            if kid is None or kid in entry[1]:
                return entry[1]
            # A kid not seen yet: the issuer may have rotated, so fetch again — but at most
            # once per ``refetch_after`` per issuer, or every presentation naming a made-up
            # kid would make this verifier fetch from the (trusted) issuer once more.
            fetched_at = entry[0] - self._ttl
            if now - fetched_at < self._refetch_after:
                return entry[1]
        # Missing, stale, or a kid not seen for a while: fetch again.
        keys = self._metadata_keys(issuer) if kind == "https" else self._did_web_keys(issuer)
        self._keys.put(issuer, (now + self._ttl, keys))
        return keys

    def _metadata_keys(self, issuer: str) -> dict[str, PublicKey]:
        document = self._fetcher.get_json(metadata_url(issuer))
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise IssuerMetadataInvalid("the issuer metadata is for another issuer")
        jwks = document.get("jwks")
        uri = document.get("jwks_uri")
        if (jwks is None) == (uri is None):
            raise IssuerMetadataInvalid("the issuer metadata must have jwks or jwks_uri")
        if uri is not None:
            if not isinstance(uri, str):
                raise IssuerMetadataInvalid("jwks_uri must be a string")
            jwks = self._fetcher.get_json(uri)
        listed = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(listed, list) or not listed:
            raise IssuerMetadataInvalid("the issuer publishes no keys")
        keys: dict[str, PublicKey] = {}
        for jwk in listed:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            if not isinstance(kid, str) or kid in keys:
                raise IssuerMetadataInvalid("every issuer key needs a distinct kid")
            try:  # public keys only: a JWK with "d" is refused
                keys[kid] = public_key_from_jwk({k: v for k, v in jwk.items() if k != "kid"})
            except CommonsError as e:
                raise IssuerMetadataInvalid("an issuer key is not a valid public JWK") from e
        return keys

    def _did_web_keys(self, did: str) -> dict[str, PublicKey]:
        try:
            document = self._dids.resolve(did)
        except CommonsError as e:
            raise IssuerMetadataInvalid(f"the issuer's DID document: {e.detail}") from e
        methods = document.get("verificationMethod")
        keys: dict[str, PublicKey] = {}
        for method in methods if isinstance(methods, list) else []:
            method_id = method.get("id") if isinstance(method, dict) else None
            if not isinstance(method_id, str):
                continue
            fragment = method_id.rsplit("#", 1)[-1] if "#" in method_id else None
            if fragment is None or method_id not in (f"{did}#{fragment}", f"#{fragment}"):
                continue
            try:
                key = method_key(document, did, fragment)
            except CommonsError as e:
                raise IssuerMetadataInvalid(f"DID verification method {method_id!r}") from e
            keys[f"{did}#{fragment}"] = keys[f"#{fragment}"] = key
        if not keys:
            raise IssuerMetadataInvalid("the issuer's DID document has no usable keys")
        return keys

    # -- status ---------------------------------------------------------------------------

    def status(
        self,
        issuer: str,
        kind: EntryKind,
        uri: str,
        index: int,
        *,
        certified_key: PublicKey | None = None,
    ) -> TokenStatus:
        """The status at ``index`` of ``issuer``'s list at ``uri``, signed by that issuer —
        for an issuer trusted through an X.509 anchor (``kind`` ``x509``), by
        ``certified_key``, the key of the end-entity certificate its credential's chain
        verified (the list's own header names no key this verifier would take).

        Raises what :meth:`StatusListFetcher.status` raises, and :class:`UnknownForeignKey`
        for an ``x509`` issuer without ``certified_key``.
        """
        if kind == "x509":
            if certified_key is None:
                raise UnknownForeignKey("no certified key for this issuer's status list")
            # Lists cached under the issuer and the key: one verified under another
            # certificate's key is not this credential's issuer's.
            return StatusListFetcher(
                self._fetcher,
                lambda _header: certified_key,
                max_ttl=self._ttl,
                clock=self._clock,
                cache=self._lists,
                namespace=f"{issuer}#{thumbprint(certified_key)}",
            ).status(uri, index)
        fetcher = self._status.get(issuer)
        if fetcher is None:
            resolved: IssuerKind = kind
            fetcher = StatusListFetcher(
                self._fetcher,
                lambda header: self.key(issuer, resolved, header),
                max_ttl=self._ttl,
                clock=self._clock,
                cache=self._lists,
                namespace=issuer,
            )
            self._status.put(issuer, fetcher)
        return fetcher.status(uri, index)


def foreign_issuers(rt: Runtime) -> ForeignIssuers:
    """The runtime's resolver of foreign issuers, made on first use with the settings' SSRF
    guard (tests install their own with ``FOREIGN_ISSUERS.set(rt, ...)``)."""
    return FOREIGN_ISSUERS(rt)


FOREIGN_ISSUERS = Attached[Runtime, ForeignIssuers](
    lambda rt: ForeignIssuers(
        OutboundFetcher(
            allow_private=rt.settings.insecure_allow_private_network,
            allow_http=rt.settings.insecure_allow_http,
        )
    )
)
"""Each runtime's resolver of foreign issuers (see :func:`foreign_issuers`)."""
