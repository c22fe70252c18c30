"""FastAPI dependencies for routes that lenders call with an access token.

``LenderDep`` authenticates the bearer token (``access_token.authenticate_lender``) and
counts the request against the per-IP and per-client rate limits; the response then carries
the ``X-RateLimit-*`` headers.  A route that wants its own operation name in the
``access.denied`` events of failed authentications uses ``lender_for("credentials.read")``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from credit_commons.consent.access import NotAuthenticated, anonymous_actor
from credit_commons.core.db import transaction
from credit_commons.gateway.access_token import (
    LenderPrincipal,
    authenticate_lender,
    require_scope,
)
from credit_commons.gateway.client_cert import CertificateRefused, presented_thumbprint
from credit_commons.gateway.ratelimit import rate_limits, remember
from credit_commons.runtime import Runtime

__all__ = [
    "LenderDep",
    "LenderPrincipal",
    "authenticate_request",
    "get_lender",
    "lender_for",
    "require_scope",
    "route_operation",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9.:-]+")


def route_operation(request: Request) -> str:
    """The operation :func:`get_lender` names in its denials: ``lender.`` and the route's
    endpoint name with ``_`` as ``-`` (``lender.get-client``), an event Token."""
    route = request.scope.get("route")
    name = getattr(route, "name", None) or "unknown"
    return "lender." + _UNSAFE.sub("-", name)[:100]


def authenticate_request(
    request: Request, authorization: str | None, operation: str, session: Session | None = None
) -> LenderPrincipal:
    """What the dependencies do, for a handler that authenticates inside its own worker
    thread (one thread hop per request instead of two on a hot path), optionally in the
    caller's read unit of work ``session`` (one transaction per request instead of two)."""
    rt: Runtime = request.app.state.runtime
    limiter = rate_limits(rt)
    # The per-address and per-credential limits were counted before routing
    # (RateLimitMiddleware), so a flood of bad tokens is cut off before each one costs a
    # signature check and an access.denied event; this counts the verified client, since
    # a lender can hold several tokens.
    try:
        certificate = presented_thumbprint(request)
    except CertificateRefused as e:
        raise NotAuthenticated(
            operation=operation, reason=e.reason, actor=anonymous_actor(rt)
        ) from None
    if session is None:
        with transaction(rt.read_sessions) as own:
            principal = authenticate_lender(
                own, rt, authorization, operation=operation, certificate=certificate
            )
    else:
        principal = authenticate_lender(
            session, rt, authorization, operation=operation, certificate=certificate
        )
    remember(request, limiter.hit_client("api", principal.client_id))
    return principal


def get_lender(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> LenderPrincipal:
    """The lender calling this route (operation named after the route).

    Raises ``NotAuthenticated`` (401, recorded as ``access.denied``), ``RateLimited`` (429)
    or ``RateLimitUnavailable`` (503).
    """
    return authenticate_request(request, authorization, route_operation(request))


def lender_for(operation: str) -> Callable[..., LenderPrincipal]:
    """A dependency like :func:`get_lender` whose denials name ``operation``
    (``Annotated[LenderPrincipal, Depends(lender_for("credentials.read"))]``)."""

    def dependency(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> LenderPrincipal:
        return authenticate_request(request, authorization, operation)

    return dependency


LenderDep = Annotated[LenderPrincipal, Depends(get_lender)]
"""The authenticated, rate-limited lender of a request."""
