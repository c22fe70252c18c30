"""HTTP API of the checkpoint committee (docs/log.md "Checkpoint committee"):
``GET /v1/tasks/current``, ``POST /v1/partials`` and ``GET /v1/committee``.

A partial comes from the full node its member is bound to: ``Authorization: Bearer`` that
node's service token (scope ``partials:write``, keys/service_tokens.py), checked first, then
the binding, then the partial's BLS signature under the key the committee lists for its
member index, over this log's checkpoint text.  Every refused token — absent, malformed,
expired, without the scope, another node's — is the same 401
(``auth.service_token_invalid``); the log records why.  The route group's rate limit per
address bounds the rest.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64_decode
from credit_commons.core.errors import ForbiddenError, UnauthorizedError, ValidationError
from credit_commons.gateway.deps import ReadSessionDep, RuntimeDep
from credit_commons.gateway.openapi import answers
from credit_commons.gateway.service_deps import require_service
from credit_commons.keys import ServiceCaller, ServiceTokenInvalid
from credit_commons.ledger import committee_service

__all__ = ["member_node", "router"]

router = APIRouter(tags=["checkpoint committee"])
log = logging.getLogger("credit_commons.ledger.committee")

_B64 = r"^[A-Za-z0-9+/]+={0,2}$"


class CommitteeView(BaseModel):
    """A registered committee: its group file, version and time lock."""

    format: str
    name: str
    threshold: int
    members: int
    group_key: str
    member_keys: list[str]
    vkey: str
    version: int
    registered_at: str
    effective_at: str
    in_effect: bool


class TaskView(BaseModel):
    """The checkpoint to sign: its size, root and log-signed note, and the partials so far."""

    size: int
    root: str
    checkpoint: str
    partials: int
    threshold: int


class CurrentTask(BaseModel):
    """The committee in effect (``null``: none) and its task (``null``: nothing to sign)."""

    committee: CommitteeView | None
    task: TaskView | None


class Committees(BaseModel):
    """Every registered committee version, oldest first (a pending one shows
    ``in_effect: false`` until its ``effective_at``)."""

    committees: list[CommitteeView]


class PartialRequest(BaseModel):
    """A member's partial signature over this log's checkpoint of ``size`` with ``root``:
    ``signature`` is the 96-byte compressed G2 point, base64."""

    model_config = ConfigDict(extra="forbid")

    group_key: Annotated[str, Field(min_length=64, max_length=64, pattern=_B64)]
    member: Annotated[int, Field(ge=1, le=255)]
    size: Annotated[int, Field(ge=1, le=2**63 - 1)]
    root: Annotated[str, Field(min_length=44, max_length=44, pattern=_B64)]
    signature: Annotated[str, Field(min_length=128, max_length=128, pattern=_B64)]


class PartialAccepted(BaseModel):
    """The partial was stored; ``cosigned`` once the committee's line is served."""

    accepted: bool
    partials: int
    threshold: int
    cosigned: bool


def _bytes(value: str, size: int, field: str) -> bytes:
    data = b64_decode(value)
    if len(data) != size:
        raise ValidationError(f"{field} must be {size} bytes", extra={"field": field})
    return data


def _view(registered: committee_service.RegisteredCommittee, now: Any) -> CommitteeView:
    return CommitteeView.model_validate(registered.to_json(now))


@router.get(
    "/v1/tasks/current",
    summary="The checkpoint committee's current signing task.",
    responses=answers(CurrentTask),
)
def get_task(session: ReadSessionDep, runtime: RuntimeDep) -> CurrentTask:
    now = runtime.clock.now()
    current, task = committee_service.current_task(session, now)
    return CurrentTask(
        committee=None if current is None else _view(current, now),
        task=None
        if task is None
        else TaskView(
            size=task.size,
            root=task.root.b64(),
            checkpoint=task.checkpoint,
            partials=task.partials,
            threshold=task.committee.group.threshold,
        ),
    )


@router.get(
    "/v1/committee",
    summary="Every registered checkpoint committee, with its time lock.",
    responses=answers(Committees),
)
def get_committees(session: ReadSessionDep, runtime: RuntimeDep) -> Committees:
    now = runtime.clock.now()
    return Committees(committees=[_view(c, now) for c in committee_service.committees(session)])


_member_token = require_service("partials:write")


def member_node(
    request: Request,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
) -> ServiceCaller:
    """The full node the request's service token proves, granted ``partials:write``; every
    refusal the same 401 (:data:`committee_service.PARTIAL_TOKEN_REFUSED`)."""
    try:
        return _member_token(request, session, runtime, authorization)
    except (UnauthorizedError, ForbiddenError) as e:
        log.warning("committee partial refused: %s", e.detail)
        raise ServiceTokenInvalid(committee_service.PARTIAL_TOKEN_REFUSED) from e


@router.post(
    "/v1/partials",
    summary="A committee member's partial signature on the current checkpoint, with its "
    "node's service token (scope partials:write).",
    responses=answers(PartialAccepted, 400, 401, 404, 409, 422),
)
async def post_partial(
    body: PartialRequest,
    runtime: RuntimeDep,
    caller: Annotated[ServiceCaller, Depends(member_node)],
) -> PartialAccepted:
    group_key = _bytes(body.group_key, 48, "group_key")
    root = _bytes(body.root, 32, "root")
    signature = _bytes(body.signature, 96, "signature")

    def submit() -> committee_service.PartialOutcome:
        # The unit of work commits an equivocation's report before the refusal is raised.
        with transaction(runtime.sessions) as session:
            return committee_service.submit_partial(
                session,
                runtime,
                group_key=group_key,
                member=body.member,
                size=body.size,
                root=root,
                signature=signature,
                node=caller.name,
                now=runtime.clock.now(),
            )

    outcome = await run_in_threadpool(submit)
    if outcome.equivocation is not None:
        raise outcome.equivocation
    return PartialAccepted(
        accepted=outcome.accepted,
        partials=outcome.partials,
        threshold=outcome.threshold,
        cosigned=outcome.cosigned,
    )
