"""HTTP API of the credential catalogue, under ``/v1/credential-types``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from credit_commons.gateway.deps import get_runtime, get_session
from credit_commons.identity.router import PrincipalDep
from credit_commons.issuer import service, status
from credit_commons.runtime import Runtime

__all__ = ["router", "status_router"]

router = APIRouter(prefix="/v1/credential-types", tags=["credential catalogue"])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_session)]  # rendering may create the key
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


class TypeDefinition(BaseModel):
    """A credential type as submitted by an administrator."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=64)]
    vct: Annotated[str, Field(max_length=255)]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]
    disclosable: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=64)] = []
    default_validity_days: Annotated[int, Field(ge=1, le=3650)] = 365


@router.get("", summary="Every credential type.")
def list_types(session: SessionDep, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [t.as_json() for t in service.list_types(session, runtime)]


@router.get("/{name}", summary="One credential type.")
def get_type(
    name: Annotated[str, Path(pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")],
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    return service.get_type(session, runtime, name).as_json()


@router.put("", summary="Add or replace a credential type (administrators).")
def put_type(
    body: TypeDefinition, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    definition = body.model_dump(by_alias=True)
    return service.put_type(session, runtime, principal, definition).as_json()


status_router = APIRouter(tags=["status lists"])


@status_router.get("/status-lists/{list_id}", summary="A signed status list.")
def status_list(
    list_id: Annotated[str, Path(pattern=r"^sl_[0-9A-Z]{26}$")],
    session: ReadSessionDep,
    runtime: RuntimeDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    rendered = status.render(session, runtime, list_id)
    etag = f'"{list_id}-{rendered.version}"'
    headers = {"Cache-Control": "public, max-age=300", "ETag": etag}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(rendered.token, media_type=rendered.media_type, headers=headers)
