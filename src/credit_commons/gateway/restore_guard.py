"""Backup-restore mode at the HTTP edge: a restored instance refuses every write (503
``service.restore_mode``, problem+json naming the mode and the backup) until an operator
confirms the restore (ledger/restore_mode.py; docs/operations.md, "Backup and restore").

Reads — ``GET``, ``HEAD``, ``OPTIONS`` — are served as usual.  The mode is read from the
database at most once a second per process (:class:`RestoreModeCache`), in a worker thread,
so a write costs no query while the process's reading is fresh.
"""

from __future__ import annotations

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from credit_commons.core.db import transaction
from credit_commons.gateway.problems import send_problem
from credit_commons.ledger.restore_mode import RestoreHold, RestoreModeCache
from credit_commons.runtime import Runtime

__all__ = ["RestoreModeMiddleware", "current_hold"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _read(runtime: Runtime, cache: RestoreModeCache) -> RestoreHold | None:
    with transaction(runtime.read_sessions) as session:
        return cache.read(session)


async def current_hold(runtime: Runtime, cache: RestoreModeCache) -> RestoreHold | None:
    """The restore this instance is held in (None: not held), as the cache last read it or
    read now when that reading is stale."""
    if cache.fresh():
        return cache.cached()
    return await to_thread.run_sync(_read, runtime, cache)


class RestoreModeMiddleware:
    """Answers every request with an unsafe method 503 while the database is held in
    backup-restore mode (pure ASGI, after rate limiting and admission)."""

    def __init__(self, app: ASGIApp, runtime: Runtime, cache: RestoreModeCache) -> None:
        self.app = app
        self.runtime = runtime
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method", "GET") not in _SAFE:
            hold = await current_hold(self.runtime, self.cache)
            if hold is not None:
                error = hold.error()
                await send_problem(scope, send, error, [("Retry-After", str(error.retry_after))])
                return
        await self.app(scope, receive, send)
