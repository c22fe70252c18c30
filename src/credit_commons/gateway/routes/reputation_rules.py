"""HTTP API of the reputation rule-set registry (docs/reputation.md "Rule set"):
``GET /v1/rules/active`` and ``GET /v1/rules/{id}`` (``?version=``) — public, read-only,
each rule set with its hash and signed token so a client can pin it — and
``GET /v1/rules/jwks``, the registry key's versions, to verify the token with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from credit_commons.gateway.deps import ReadSessionDep, RuntimeDep, SessionDep
from credit_commons.gateway.openapi import JwkSet, answers
from credit_commons.reputation import rules_service
from credit_commons.reputation.rules_schemas import RuleSetView

__all__ = ["router"]

router = APIRouter(prefix="/v1/rules", tags=["reputation rules"])


@router.get(
    "/active",
    summary="The rule set in effect now (the highest version whose validFrom has passed).",
    responses=answers(RuleSetView, 404),
)
def active_rule_set(session: ReadSessionDep, runtime: RuntimeDep) -> RuleSetView:
    return rules_service.active_rule_set(session, runtime, runtime.clock.now()).view


@router.get("/jwks", summary="Keys that sign rule sets.", responses=answers(JwkSet))
def rule_set_keys(session: SessionDep, runtime: RuntimeDep) -> JwkSet:
    # A write session: the registry key is made on first use, as every platform key is.
    return JwkSet(keys=[v.jwk() for v in rules_service.rule_set_keys(session, runtime)])


@router.get(
    "/{rule_set_id}",
    summary="One rule set: its newest version, or the version asked for (even if not in "
    "effect yet), with its hash and signed token.",
    responses=answers(RuleSetView, 404, 422),
)
def get_rule_set(
    rule_set_id: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{2,63}$")],
    session: ReadSessionDep,
    runtime: RuntimeDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> RuleSetView:
    return rules_service.get_rule_set(session, runtime, rule_set_id, version).view
