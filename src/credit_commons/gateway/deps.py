"""FastAPI dependencies shared by the routers (``gateway/routes/``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.identity import auth as identity_auth
from credit_commons.runtime import Runtime

__all__ = [
    "NO_STORE",
    "PrincipalDep",
    "ReadPrincipalDep",
    "ReadSessionDep",
    "RuntimeDep",
    "SessionDep",
    "get_principal",
    "get_read_principal",
    "get_read_session",
    "get_runtime",
    "get_session",
    "platform_audience",
]

NO_STORE = {"Cache-Control": "no-store"}
"""Response headers for anything personal or secret (tokens, profiles, exports)."""


def platform_audience(runtime: Runtime) -> str:
    """This platform's audience in proofs addressed to it (a presentation's or a subject
    proof's ``aud``): its public URL without a trailing ``/``, as wallets name it."""
    return runtime.settings.public_url.rstrip("/")


async def get_runtime(request: Request) -> Runtime:
    """The runtime of the app serving ``request`` (async: no I/O, so no thread hop)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed if the handler returns, rolled back if not."""
    runtime: Runtime = request.app.state.runtime
    with transaction(runtime.sessions) as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """A read-only unit of work (no write lock on SQLite) for handlers that only read."""
    runtime: Runtime = request.app.state.runtime
    with transaction(runtime.read_sessions) as session:
        yield session


# scope="function": the unit of work ends (commits) when the handler returns, *before* the
# response is sent.  FastAPI's default ends it after the response went out, so a client
# could be told 200 for a write that was not yet committed (and would be lost if the commit
# then failed), and its next request could miss it: a verification right after a
# revocation was seen to pass.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
"""A read-write unit of work for a handler, committed before the response is sent."""

ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
"""A read-only unit of work for a handler that only reads."""

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
"""The app's runtime."""


def get_principal(
    session: SessionDep,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
) -> identity_auth.Principal:
    """The authenticated caller; raises ``UnauthorizedError`` (401) otherwise."""
    return identity_auth.authenticate(session, runtime, authorization)


PrincipalDep = Annotated[identity_auth.Principal, Depends(get_principal)]
"""The authenticated caller (an identity's bearer token)."""


def get_read_principal(
    session: ReadSessionDep,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
) -> identity_auth.Principal:
    """The authenticated caller, read in a read-only unit of work: for a handler that opens
    its own units of work (one that fetches over the network and must hold no write
    transaction meanwhile); raises ``UnauthorizedError`` (401) otherwise."""
    return identity_auth.authenticate(session, runtime, authorization)


ReadPrincipalDep = Annotated[identity_auth.Principal, Depends(get_read_principal)]
"""The authenticated caller, without holding a read-write unit of work."""
