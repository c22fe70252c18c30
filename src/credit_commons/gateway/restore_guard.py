"""Backup-restore mode at the HTTP edge: a restored instance refuses every write (503
``service.restore_mode``, problem+json naming the mode and the backup) until an operator
confirms the restore (ledger/restore_mode.py; docs/operations.md, "Backup and restore").

Reads — ``GET``, ``HEAD``, ``OPTIONS`` — are served as usual.  The mode is read from the
database at most once a second per process (:class:`RestoreModeCache`), in a worker thread,
so a write costs no query while the process's reading is fresh.
"""

from __future__ import annotations

from anyio import to_thread
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from credit_commons.core.db import busy_error
from credit_commons.gateway.problems import send_problem
from credit_commons.ledger.restore_mode import RestoreHold, RestoreModeCache
from credit_commons.runtime import Runtime

__all__ = ["RestoreModeMiddleware", "current_hold"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _read(runtime: Runtime, cache: RestoreModeCache) -> RestoreHold | None:
    # A read that is never committed (closing the session rolls it back): the request's own
    # unit of work stays the only one that commits before its response.
    session = runtime.read_sessions()
    try:
        return cache.read(session)
    finally:
        session.close()


async def current_hold(runtime: Runtime, cache: RestoreModeCache) -> RestoreHold | None:
    """The restore this instance is held in (None: not held), as the cache last read it or
    read now when that reading is stale."""
    if cache.fresh():
        return cache.cached()
    return await to_thread.run_sync(_read, runtime, cache)


class RestoreModeMiddleware:
    """Answers every request with an unsafe method 503 while the database is held in
    backup-restore mode (pure ASGI, after rate limiting and admission)."""

    def __init__(
        self, app: ASGIApp, runtime: Runtime, cache: RestoreModeCache, busy_total: Counter
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.cache = cache
        self.busy_total = busy_total  # commons_db_busy_total, as the problem handlers count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method", "GET") not in _SAFE:
            try:
                hold = await current_hold(self.runtime, self.cache)
            except Exception as e:
                # No connection came free, or the database is locked: the write could not
                # have run either — the same 503 the request's own unit of work would give.
                busy = busy_error(e)
                if busy is None:
                    raise
                self.busy_total.labels(busy.reason).inc()
                await send_problem(scope, send, busy, [("Retry-After", str(busy.retry_after))])
                return
            if hold is not None:
                error = hold.error()
                await send_problem(scope, send, error, [("Retry-After", str(error.retry_after))])
                return
        await self.app(scope, receive, send)
