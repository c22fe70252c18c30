"""RFC 9457 problem+json: the one place where errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from credit_commons.core.errors import CommonsError, ValidationError

__all__ = ["PROBLEM_JSON", "install_problem_handlers", "problem_response"]

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
    """The problem+json response for ``error``."""
    return JSONResponse(
        error.problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
    )


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "")


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error — ours, validation, HTTP and unexpected — to problem+json."""

    @app.exception_handler(CommonsError)
    async def _commons(request: Request, error: CommonsError) -> JSONResponse:
        if error.status >= 500:
            log.error("request failed", extra={"fields": {"code": error.code}})
        return problem_response(error, request)

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
