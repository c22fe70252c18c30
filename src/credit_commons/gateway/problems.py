"""RFC 9457 problem+json: the one place where errors become HTTP responses."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from credit_commons.core.db import busy_error
from credit_commons.core.errors import CommonsError, UnavailableError, ValidationError

__all__ = ["PROBLEM_JSON", "install_problem_handlers", "problem_response", "send_problem"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("credit_commons.gateway")

_HTTP_CODES = {
    400: ("request.bad", "Bad request"),
    401: ("auth.unauthenticated", "Not authenticated"),
    403: ("auth.forbidden", "Not permitted"),
    404: ("resource.not_found", "Not found"),
    405: ("request.method_not_allowed", "Method not allowed"),
    406: ("request.not_acceptable", "Not acceptable"),
    413: ("request.too_large", "Request too large"),
    415: ("request.unsupported_media_type", "Unsupported media type"),
    429: ("request.rate_limited", "Too many requests"),
}


def problem_response(error: CommonsError, request: Request) -> JSONResponse:
    """The problem+json response for ``error``, with ``Retry-After`` when it is a
    temporary unavailability that says when to come back."""
    retry_after = error.retry_after if isinstance(error, UnavailableError) else None
    return JSONResponse(
        error.problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers={"Retry-After": str(retry_after)} if retry_after else None,
    )


async def send_problem(
    scope: Scope, send: Send, error: CommonsError, headers: list[tuple[str, str]]
) -> None:
    """Answer ``error`` as problem+json from a pure ASGI middleware (before the app's
    exception handlers), with the extra response ``headers``."""
    body = json.dumps(error.problem(instance=scope.get("path"))).encode("utf-8")
    raw = [
        (b"content-type", PROBLEM_JSON.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "")


def install_problem_handlers(app: FastAPI, registry: CollectorRegistry | None = None) -> None:
    """Route every error — ours, validation, HTTP and unexpected — to problem+json.

    A database that is only busy (a pool timeout, a lock wait that ran out: see
    :func:`~credit_commons.core.db.busy_error`) is 503 ``service.database_busy`` with
    ``Retry-After``, counted in ``commons_db_busy_total`` of ``registry``; it is never a 500.
    """
    busy_total = Counter(
        "commons_db_busy_total",
        "Requests answered 503 service.database_busy, by reason.",
        ["reason"],
        registry=registry,
    )
    # Also for the pure ASGI middlewares that meet a busy database before the router.
    app.state.db_busy_total = busy_total

    @app.exception_handler(CommonsError)
    async def _commons(request: Request, error: CommonsError) -> JSONResponse:
        if error.status >= 500:
            log.error("request failed", extra={"fields": {"code": error.code}})
        return problem_response(error, request)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, error: SQLAlchemyError) -> JSONResponse:
        # Database errors enter a request through its unit of work, wherever it was opened
        # (a dependency, or a handler's own): they are translated here, once for all.
        busy = busy_error(error)
        if busy is None:
            return await _unexpected(request, error)
        busy_total.labels(busy.reason).inc()
        log.warning("database busy", extra={"fields": {"reason": busy.reason}})
        return problem_response(busy, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        # Field-level errors without echoing the submitted values back.
        fields = [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
            for e in error.errors()
        ]
        return problem_response(
            ValidationError("the request is not valid", extra={"errors": fields}), request
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(error.status_code, ("request.error", "Request error"))
        body = {
            "type": f"https://credit-commons.dev/problems/{code}",
            "title": title,
            "status": error.status_code,
            "code": code,
            "detail": title,
            "instance": request.url.path,
        }
        return JSONResponse(
            body, status_code=error.status_code, media_type=PROBLEM_JSON, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=error)
        return problem_response(CommonsError("an internal error occurred"), request)
