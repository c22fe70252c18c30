"""Internal routes (``/v1/internal/…``) for the platform's own services: each takes a
short-lived service token (``Authorization: Bearer <service+jwt>``, keys/service_tokens.py)
granting the scope the route declares (``surface_auth.py``, kind ``service``).  Every call
is logged (``service.access``: the service, the route, the token's ``jti`` and key, never the
token); docs/operations.md, "Service-to-service auth"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from credit_commons import federation
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64_encode
from credit_commons.core.errors import NotFoundError
from credit_commons.gateway.deps import ReadSessionDep, RuntimeDep, platform_audience
from credit_commons.gateway.openapi import answers
from credit_commons.gateway.service_deps import require_service
from credit_commons.keys import (
    KeyVersion,
    ServiceCaller,
    rotate_registered_key,
    service_key_states,
)
from credit_commons.ledger import service as ledger_service

__all__ = [
    "KeyRotation",
    "LeafMessage",
    "LeafMessages",
    "LogState",
    "RotatedKey",
    "ServiceKey",
    "ServiceKeys",
    "router",
]

router = APIRouter(prefix="/v1/internal", tags=["internal"])


class LogState(BaseModel):
    """The log's size and root, and its newest checkpoint's size and time."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(description="entries sequenced")
    root: str = Field(description="base64 RFC 6962 root hash over the sequenced entries")
    checkpoint_size: int | None = Field(description="the newest checkpoint's size, if any")
    checkpoint_at: datetime | None = Field(description="when it was signed")


@router.get(
    "/log/state",
    summary="The log's size and newest checkpoint (scope log:state).",
    responses=answers(LogState, 401, 403),
)
def log_state(
    session: ReadSessionDep,
    _caller: Annotated[ServiceCaller, Depends(require_service("log:state"))],
) -> LogState:
    size, root = ledger_service.log_state(session)
    row = ledger_service.latest_checkpoint(session)
    return LogState(
        size=size,
        root=b64_encode(root),
        checkpoint_size=None if row is None else row.size,
        checkpoint_at=None if row is None else row.created_at,
    )


class LeafMessage(BaseModel):
    """One signed federation message, as the publisher sends it on NATS."""

    model_config = ConfigDict(extra="forbid")
    stream: str
    subject: str
    body: str = Field(description="the compact JWS the log signed")


class LeafMessages(BaseModel):
    """The messages of one log leaf (none for a leaf that is no spine event's)."""

    model_config = ConfigDict(extra="forbid")
    index: int
    messages: list[LeafMessage]


@router.get(
    "/log/messages/{index}",
    summary="The signed federation messages of one log leaf (scope log:messages).",
    responses=answers(LeafMessages, 401, 403, 404),
)
def leaf_messages(
    index: Annotated[int, Path(ge=0, le=2**63 - 1)],
    session: ReadSessionDep,
    runtime: RuntimeDep,
    _caller: Annotated[ServiceCaller, Depends(require_service("log:messages"))],
) -> LeafMessages:
    # A full node fetches a message its stream lost or it dropped, and checks it against
    # the leaf it mirrors before storing it (docs/federation.md, "Missing inputs").
    if index >= ledger_service.log_state(session)[0]:
        raise NotFoundError("no such leaf in the log")
    found = federation.leaf_messages(session, runtime, index)
    return LeafMessages(
        index=index,
        messages=[
            LeafMessage(stream=m.stream, subject=m.subject, body=m.body.decode("ascii"))
            for m in found
        ],
    )


class ServiceKey(BaseModel):
    """One version of a service's key and whether it signs, verifies or is retired."""

    model_config = ConfigDict(extra="forbid")
    service: str
    name: str = Field(
        description="the instance: the service id for a key in the platform's key store, "
        "else a registered instance (a full node's id)"
    )
    version: int
    kid: str
    created_at: datetime
    state: str = Field(description="signing, verifying (until retires_at) or retired")
    retires_at: datetime | None = Field(description="when a verifying version retires")


class ServiceKeys(BaseModel):
    """Every version of every service key."""

    model_config = ConfigDict(extra="forbid")
    keys: list[ServiceKey]


@router.get(
    "/service-keys",
    summary="The service keys' versions and states (scope keys:read).",
    responses=answers(ServiceKeys, 401, 403),
)
def service_keys(
    session: ReadSessionDep,
    runtime: RuntimeDep,
    _caller: Annotated[ServiceCaller, Depends(require_service("keys:read"))],
) -> ServiceKeys:
    states = service_key_states(session, runtime, runtime.settings.service_key_overlap)
    return ServiceKeys(keys=[ServiceKey.model_validate(k, from_attributes=True) for k in states])


class KeyRotation(BaseModel):
    """A registered service instance's next key: ``proof`` is a compact JWS (``typ:
    service-key+jwt``) signed by that key, carrying it in its ``jwk`` header, with ``iss``
    and ``sub`` the caller's service and instance, ``aud`` this platform, ``iat``, ``exp``."""

    model_config = ConfigDict(extra="forbid")
    proof: str = Field(min_length=16, max_length=4096)


class RotatedKey(BaseModel):
    """The version registered: it signs from now; the one before verifies until
    ``previous_retires_at``."""

    model_config = ConfigDict(extra="forbid")
    service: str
    name: str
    version: int
    kid: str
    previous_retires_at: datetime | None


@router.post(
    "/service-keys/rotate",
    summary="A registered service instance registers its next key (scope keys:rotate).",
    responses=answers(RotatedKey, 401, 403, 409, 422),
)
async def rotate_own_key(
    body: KeyRotation,
    runtime: RuntimeDep,
    caller: Annotated[ServiceCaller, Depends(require_service("keys:rotate"))],
) -> RotatedKey:
    audience = platform_audience(runtime)

    def rotate() -> KeyVersion:
        with transaction(runtime.sessions) as session:
            return rotate_registered_key(session, runtime, caller, body.proof, audience=audience)

    registered = await run_in_threadpool(rotate)
    overlap = timedelta(seconds=runtime.settings.service_key_overlap)
    return RotatedKey(
        service=caller.service,
        name=caller.name,
        version=registered.version,
        kid=registered.kid,
        previous_retires_at=None if registered.version == 1 else registered.created_at + overlap,
    )
