"""Fetching status lists for verification: SSRF-guarded, signature-checked, cached.

``StatusListFetcher.status(uri, index)`` fetches the Status List Token at ``uri`` through
:class:`~credit_commons.core.net.OutboundFetcher` (https only, no private addresses, no
redirects, a size cap) — a ``statuslist+jwt``, or a ``statuslist+cwt`` (COSE_Sign1,
draft-ietf-oauth-status-list §5.2) when the issuer answers with that media type — verifies
its signature with the key the injected resolver returns for the token's header (for a CWT,
its ``kid`` as text and its ``alg`` as the JOSE name), checks its claims in either form with
``formats.status_list_token.check_claims`` (its ``sub`` is ``uri``, so a list cannot be
served for another one; ``iat`` present, §5.1 and §5.2 make it REQUIRED; not expired, not
before its ``nbf``), and caches the decoded list until the earlier of its ``ttl`` and
``exp`` (at most ``max_ttl``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from credit_commons.core.cache import BoundedCache
from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.cose_sign1 import KID, CoseSign1
from credit_commons.formats.jws import EMBEDDED_KEY_HEADERS, JwsAlgorithmRefused, parse_compact
from credit_commons.formats.status_list import StatusList, TokenStatus
from credit_commons.formats.status_list_cwt import CWT_MEDIA_TYPE, verify_status_list_cwt
from credit_commons.formats.status_list_token import check_claims
from credit_commons.keys import ACCEPTED_ALGS, PublicKey

__all__ = ["StatusListCache", "StatusListFetcher", "StatusListRejected", "status_list_cache"]

KeyResolver = Callable[[Mapping[str, Any]], PublicKey]


class StatusListRejected(IntegrityError):
    """A fetched status list that is not acceptable (signature, subject, expiry, format)."""

    code = "credential.status_list_invalid"
    title = "Status list not acceptable"


StatusListCache = BoundedCache[tuple[str, str], tuple[float, StatusList]]
"""Fetched lists by (namespace, uri): their expiry and the list."""


def status_list_cache() -> StatusListCache:
    """A cache of fetched status lists.  The URIs come from the credentials presented, so it
    is bounded: at most 1,024 lists and 64 MiB (a list holds ``size * bits / 8`` bytes)."""
    return BoundedCache(
        max_entries=1024,
        max_bytes=64 * 1024 * 1024,
        size=lambda key, entry: len(key[0]) + len(key[1]) + entry[1].size * entry[1].bits // 8,
    )


class StatusListFetcher:
    """Fetches and caches Token Status Lists for one verifier.

    Several fetchers (one per foreign issuer) may share one ``cache``, each under its own
    ``namespace``, so that their lists are bounded together.
    """

    def __init__(
        self,
        fetcher: OutboundFetcher,
        key_resolver: KeyResolver,
        *,
        max_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
        cache: StatusListCache | None = None,
        namespace: str = "",
    ) -> None:
        self._fetcher = fetcher
        self._resolve = key_resolver
        self._max_ttl = max_ttl
        self._clock = clock
        self._cache = cache if cache is not None else status_list_cache()
        self._namespace = namespace

    def _load(self, uri: str) -> StatusList:
        body, headers = self._fetcher.get_bytes(
            uri, accept=f"application/statuslist+jwt, {CWT_MEDIA_TYPE};q=0.9"
        )
        now = self._clock()
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == CWT_MEDIA_TYPE:
            decoded, exp, ttl = self._from_cwt(uri, body, now)
        else:
            decoded, exp, ttl = self._from_jwt(uri, body, now)
        # Compared before any arithmetic: an exact integer too large for a float (a far
        # exp or ttl) must not overflow here.
        lifetime = self._max_ttl if ttl is None or ttl >= self._max_ttl else float(ttl)
        if exp is not None and exp < now + lifetime:
            lifetime = exp - now
        self._cache.put((self._namespace, uri), (now + lifetime, decoded))
        return decoded

    def _from_jwt(
        self, uri: str, body: bytes, now: float
    ) -> tuple[StatusList, float | None, float | None]:
        # The list, its exp and its ttl, from a statuslist+jwt (TSL §5.1, §8.3).
        try:
            jws = parse_compact(body.decode("ascii"), algs=ACCEPTED_ALGS, refused_headers=())
        except JwsAlgorithmRefused as e:
            raise StatusListRejected("the status list signature does not verify") from e
        except (UnicodeDecodeError, CommonsError) as e:
            raise StatusListRejected("the status list is not a JWT") from e
        header, payload = jws.header, jws.payload
        if header.get("typ") != "statuslist+jwt":
            raise StatusListRejected("the status list typ is not statuslist+jwt")
        if EMBEDDED_KEY_HEADERS & set(header):
            raise StatusListRejected("keys embedded in the status list header are not accepted")
        try:
            jws.verify(self._resolve(header))
        except CommonsError as e:
            raise StatusListRejected("the status list signature does not verify") from e
        try:
            times = check_claims(
                sub=payload.get("sub"),
                iat=payload.get("iat"),
                exp=payload.get("exp"),
                nbf=payload.get("nbf"),
                ttl=payload.get("ttl"),
                uri=uri,
                now=now,
                ttl_integer=False,
            )
        except CommonsError as e:
            raise StatusListRejected(e.detail) from e
        try:
            decoded = StatusList.from_json(payload.get("status_list"))
        except CommonsError as e:
            raise StatusListRejected("the status list is malformed") from e
        return decoded, times.exp, times.ttl

    def _from_cwt(
        self, uri: str, body: bytes, now: float
    ) -> tuple[StatusList, float | None, float | None]:
        # The list, its exp and its ttl, from a statuslist+cwt (TSL §5.2, §8.3); the key is
        # resolved as for a JWT, from the kid (UTF-8 text) and the JOSE name of the alg.
        def key(token: CoseSign1) -> PublicKey:
            kid = token.header(KID)
            header: dict[str, Any] = {"alg": token.alg}
            if kid is not None:
                if not isinstance(kid, bytes):
                    raise StatusListRejected("the status list kid must be a byte string")
                header["kid"] = kid.decode("utf-8", errors="strict")
            return self._resolve(header)

        try:
            token = verify_status_list_cwt(body, key, uri=uri, now=now)
        except StatusListRejected:
            raise
        except (UnicodeDecodeError, CommonsError) as e:
            raise StatusListRejected(f"the status list is not acceptable: {e}") from e
        return token.status_list, token.exp, token.ttl

    def status(self, uri: str, index: int) -> TokenStatus:
        """The status at ``index`` of the list at ``uri`` (from the cache while fresh).

        Raises ``UnsafeUrl``/``FetchFailed`` from the fetcher, :class:`StatusListRejected`,
        or ``StatusIndexOutOfRange``.
        """
        cached = self._cache.get((self._namespace, uri))
        status_list = (
            cached[1] if cached is not None and cached[0] > self._clock() else self._load(uri)
        )
        return TokenStatus(status_list.get(index))
