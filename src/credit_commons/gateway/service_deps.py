"""The dependency of routes that other services call: a short-lived service token
(``Authorization: Bearer <service+jwt>``, keys/service_tokens.py) granting the scopes the
route declares (``surface_auth.py``, kind ``service``), each call logged (``service.access``:
the service, the route, the token's ``jti`` and key, never the token).  Used by the internal
routes, the committee's partials and the member documents full nodes read; docs/operations.md,
"Service-to-service auth"."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Header, Request

from credit_commons.core.errors import UnauthorizedError
from credit_commons.gateway.deps import ReadSessionDep, RuntimeDep, platform_audience
from credit_commons.keys import ServiceCaller, accepted_keys, verify_service_token

__all__ = ["require_service"]

access = logging.getLogger("credit_commons.service_access")


def require_service(*scopes: str) -> Callable[..., ServiceCaller]:
    """A dependency: the service the request's token proves, granted every one of
    ``scopes``; 401 (``auth.service_token_invalid``) or 403 (``auth.service_scope_missing``)
    otherwise."""

    def dependency(
        request: Request,
        session: ReadSessionDep,
        runtime: RuntimeDep,
        authorization: Annotated[str | None, Header()] = None,
    ) -> ServiceCaller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError("a service token is required (Authorization: Bearer)")
        overlap = runtime.settings.service_key_overlap
        caller = verify_service_token(
            token.strip(),
            lambda service, name: accepted_keys(session, runtime, service, overlap, name),
            audience=platform_audience(runtime),
            now=runtime.clock.now(),
            required=scopes,
            max_ttl=runtime.settings.service_token_ttl,
        )
        # The token's jti names the call (never the token itself): tokens are reused
        # within their lifetime, so one jti may appear on many calls.
        access.info(
            "service.access",
            extra={
                "fields": {
                    "service": caller.service,
                    "instance": caller.name,
                    "route": f"{request.method} {request.url.path}",
                    "jti": caller.jti,
                    "kid": caller.kid,
                }
            },
        )
        return caller

    return dependency
