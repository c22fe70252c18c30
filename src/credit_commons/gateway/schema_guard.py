"""The unmigrated database at the HTTP edge: until ``commons db upgrade`` has run, every
route but the operations' answers 503 ``service.not_migrated`` (problem+json, with
``Retry-After``), the refusal ``/readyz`` gives, instead of failing on a missing table
with a 500.

The state is the app's :class:`~credit_commons.core.migrate.SchemaGate`: once the schema is
found current a request costs no query; before, the database is read again at most every
few seconds, in a worker thread.
"""

from __future__ import annotations

from anyio import to_thread
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from credit_commons.core.db import busy_error
from credit_commons.core.errors import CommonsError
from credit_commons.core.migrate import SchemaGate
from credit_commons.gateway.problems import send_problem

__all__ = ["UNGATED_PATHS", "SchemaGuardMiddleware"]

UNGATED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
"""Answered whatever the schema: liveness, readiness (which says "not migrated" itself),
metrics and the API's description, none of which reads a table."""


async def _refusal(scope: Scope, send: Send, error: CommonsError) -> None:
    retry_after = getattr(error, "retry_after", None)
    headers = [] if retry_after is None else [("Retry-After", str(retry_after))]
    await send_problem(scope, send, error, headers)


class SchemaGuardMiddleware:
    """Answers 503 ``service.not_migrated`` (or the gate's other reason:
    ``service.schema_ahead``, ``service.not_granted``) while the app's schema gate is shut (pure
    ASGI, after rate limiting and admission, before anything reads a table)."""

    def __init__(self, app: ASGIApp, gate: SchemaGate, busy_total: Counter) -> None:
        self.app = app
        self.gate = gate
        self.busy_total = busy_total  # commons_db_busy_total, as the problem handlers count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and not self.gate.is_open
            and scope.get("path", "") not in UNGATED_PATHS
            and not scope.get("path", "").startswith("/docs")
        ):
            try:
                migrated = self.gate.due() and await to_thread.run_sync(self.gate.migrated)
            except CommonsError as e:
                # The database is unreachable, or a start-up check refused the migrated
                # database (a changed pepper): its own problem, never a 500.
                await _refusal(scope, send, e)
                return
            except Exception as e:
                busy = busy_error(e)
                if busy is None:
                    raise
                self.busy_total.labels(busy.reason).inc()
                await _refusal(scope, send, busy)
                return
            if not migrated:
                # The last look's reason: not migrated, migrated by a newer version, not
                # granted, or the start-up check that refused the migrated database.
                await _refusal(scope, send, self.gate.refusal())
                return
        await self.app(scope, receive, send)
