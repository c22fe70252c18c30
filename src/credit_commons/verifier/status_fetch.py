"""Fetching status lists for verification: SSRF-guarded, signature-checked, cached.

``StatusListFetcher.status(uri, index)`` fetches the ``statuslist+jwt`` at ``uri``
through :class:`~credit_commons.core.net.OutboundFetcher` (https only, no private
addresses, no redirects, a size cap), verifies its signature with the key the injected
resolver returns for the token's header, checks that its ``sub`` is ``uri`` (a list
cannot be served for another one) and that it has not expired, and caches the decoded
list until the earlier of its ``ttl`` and ``exp`` (at most ``max_ttl``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from credit_commons.core.cache import BoundedCache
from credit_commons.core.errors import CommonsError, IntegrityError
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import EMBEDDED_KEY_HEADERS, JwsAlgorithmRefused, parse_compact
from credit_commons.formats.status_list import StatusList, TokenStatus
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
        body, _headers = self._fetcher.get_bytes(uri, accept="application/statuslist+jwt")
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
        if payload.get("sub") != uri:
            raise StatusListRejected("the status list was issued for another URI")
        now = self._clock()
        exp = payload.get("exp")
        if isinstance(exp, int) and exp <= now:
            raise StatusListRejected("the status list has expired")
        try:
            decoded = StatusList.from_json(payload.get("status_list"))
        except CommonsError as e:
            raise StatusListRejected("the status list is malformed") from e
        ttl = payload.get("ttl")
        lifetime = min(
            self._max_ttl, float(ttl) if isinstance(ttl, int) and ttl > 0 else self._max_ttl
        )
        if isinstance(exp, int):
            lifetime = min(lifetime, exp - now)
        self._cache.put((self._namespace, uri), (now + lifetime, decoded))
        return decoded

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
