"""How far a full node lags behind its platform, asked with the node's own service token
(issue 21 item 2; docs/federation.md, "Service token and lag"): every ``interval`` seconds
:class:`PlatformLag` reads ``GET /v1/internal/log/state`` (scope ``log:state``) and compares
the platform's log size with the tree the node has mirrored.  :func:`rotate_node_key`
rotates the node's key from the node's side (scope ``keys:rotate``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from credit_commons.core.clock import Clock
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, ConflictError
from credit_commons.keys import ServiceIdentity
from credit_commons.node.platform import Platform

__all__ = ["PlatformLag", "rotate_node_key", "service_token"]

log = logging.getLogger("credit_commons.node.lag")


def service_token(
    platform: Platform, identity: ServiceIdentity, scope: str, *, ttl: int
) -> Callable[[], str]:
    """A source of the node's service tokens for ``scope`` at the followed platform (its
    audience asked once, on first use; each token reused until near its expiry)."""
    audience: list[str] = []

    def token() -> str:
        if not audience:
            audience.append(platform.audience())
        return identity.token(audience=audience[0], scopes=[scope], ttl=ttl)

    return token


def rotate_node_key(platform: Platform, identity: ServiceIdentity, *, ttl: int) -> str:
    """Register the node's next key with the platform (a token from the signing key, a proof
    from the next one), then sign with it; the new kid.  The old key keeps verifying for the
    platform's overlap window, so a token in hand elsewhere stays good.  Raises
    ``ConflictError`` when the platform refuses, ``FetchFailed`` when it cannot be reached
    (the next key is kept and offered again by the next attempt)."""
    audience = platform.audience()
    token = identity.token(audience=audience, scopes=["keys:rotate"], ttl=ttl)
    status = platform.rotate_service_key(token, identity.rotation_proof(audience=audience))
    if status != 200:
        raise ConflictError(f"the platform refused the key rotation (HTTP {status})")
    return identity.commit_rotation()


class PlatformLag:
    """The platform's log state as last read, and the node's lag behind it (entries)."""

    def __init__(
        self,
        platform: Platform,
        identity: ServiceIdentity,
        tree_size: Callable[[], int],
        clock: Clock,
        *,
        ttl: int,
        interval: float = 30.0,
    ) -> None:
        self.platform, self.identity, self.clock = platform, identity, clock
        self._tree_size, self.ttl, self.interval = tree_size, ttl, interval
        self._token = service_token(platform, identity, "log:state", ttl=ttl)
        self._lock = threading.Lock()
        self._state: JsonObject = {"checked_at": None}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> JsonObject:
        """Read the platform's log state now; the state :meth:`state` then answers."""
        now: datetime = self.clock.now()
        try:
            found = self.platform.log_state(self._token)
        except CommonsError as e:
            with self._lock:
                first = self._state.get("error") is None
                self._state = {**self._state, "error": e.code, "failed_at": now.isoformat()}
            if first:  # once per failure streak, never with the token
                log.warning("platform log state unavailable", extra={"code": e.code})
            return self.state()
        size = found["size"]
        mirrored = self._tree_size()
        state: JsonObject = {
            "platform_size": size,
            "platform_checkpoint_size": found.get("checkpoint_size"),
            "mirrored_size": mirrored,
            "lag": max(0, size - mirrored) if isinstance(size, int) else None,
            "checked_at": now.isoformat(),
            "error": None,
            "service": f"{self.identity.service}/{self.identity.name}",
        }
        with self._lock:
            self._state = state
        return state

    def state(self) -> JsonObject:
        """The last reading (``checked_at`` null before the first; ``error`` the problem
        code of the last failed one, if the last attempt failed)."""
        with self._lock:
            return dict(self._state)

    def start(self) -> None:
        """Poll every ``interval`` seconds in a daemon thread until :meth:`stop`."""

        def run() -> None:
            while not self._stop.is_set():
                self.check()
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=run, name="node-lag", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
