"""The HTTP answer to a refused access (consent's
:class:`~credit_commons.consent.access.Refused`): recorded after the request's unit of work
is over, then answered as problem+json."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from credit_commons.consent.access import NotAuthenticated, Refused, denial_counter
from credit_commons.gateway.problems import problem_response

__all__ = ["install_denial_handler"]


def install_denial_handler(app: FastAPI, registry: CollectorRegistry | None = None) -> None:
    """Answer every :class:`Refused` (a :class:`Denied`, a :class:`RefusedDecision`...)
    with its problem+json after recording it.

    FastAPI leaves a dependency with ``yield`` (the request's unit of work, rolled back by
    the error) before it calls exception handlers, so the event's own transaction never
    waits on the request's write lock.
    """
    # Refusals that name nobody are counted in the app's metrics too (``registry``); the
    # token endpoint, which answers in RFC 6749's shape, reaches the counter through
    # ``app.state.denial_counter``.
    counter = denial_counter(registry) if registry is not None else None
    app.state.denial_counter = counter

    @app.exception_handler(Refused)
    async def _denied(request: Request, error: Refused) -> JSONResponse:
        await run_in_threadpool(error.record, request.app.state.runtime, counter)
        response = problem_response(error, request)
        if isinstance(error, NotAuthenticated):
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
