"""HTTP API of the ZK statement registry (docs/zk.md): ``GET /v1/zk/statements`` and
``GET /v1/zk/statements/{id}`` — public, read-only, each statement with its signed token —
and ``POST /v1/admin/zk/statements`` (administrators: register a statement, or a newer
version of one, as ``commons zk statements register FILE`` does; route group ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from credit_commons.core.encoding import JsonObject
from credit_commons.gateway.deps import PrincipalDep, ReadSessionDep, RuntimeDep, SessionDep
from credit_commons.gateway.openapi import answers
from credit_commons.zk import registry
from credit_commons.zk.registry_schemas import StatementView

__all__ = ["admin_router", "router"]

router = APIRouter(prefix="/v1/zk/statements", tags=["zero-knowledge statements"])
admin_router = APIRouter(prefix="/v1/admin/zk/statements", tags=["zero-knowledge statements"])


@router.get(
    "",
    summary="Every registered ZK statement (newest version of each).",
    responses=answers(list[StatementView]),
)
def list_statements(session: ReadSessionDep, runtime: RuntimeDep) -> list[StatementView]:
    return registry.list_statements(session, runtime)


@router.get(
    "/{statement_id}",
    summary="One registered ZK statement, its document and signed token.",
    responses=answers(StatementView, 404, 422),
)
def get_statement(
    statement_id: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{2,63}$")],
    session: ReadSessionDep,
    runtime: RuntimeDep,
) -> StatementView:
    return registry.get_statement(session, runtime, statement_id)[0]


@admin_router.post(
    "",
    status_code=201,
    summary="Register a ZK statement, or a newer version of one (administrators).",
    responses=answers(StatementView, 400, 401, 404, 409, 422, status=201),
)
def register_statement(
    document: Annotated[JsonObject, Body(description="The statement's JSON document.")],
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> StatementView:
    return registry.register_statement_as(session, runtime, principal, document)
