"""HTTP API of onboarding authorities (``docs/onboarding.md``).

Administrators designate authorities under ``/v1/admin/onboarding-authorities``; an authority
binds identifiers with ``POST /v1/onboarding/bindings``, authenticated either as a bank (its
lender access token) or as an issuer desk (its own ``cct_`` bearer token).  It lives in the
gateway because a bank authenticates as the lender client it is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from credit_commons import lenders
from credit_commons.core.errors import NotFoundError
from credit_commons.gateway.deps import (
    NO_STORE,
    PrincipalDep,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
)
from credit_commons.gateway.lender_deps import authenticate_request
from credit_commons.gateway.openapi import answers
from credit_commons.identity import auth as identity_auth
from credit_commons.identity import onboarding
from credit_commons.identity.schemas import (
    AuthorityCreated,
    AuthorityView,
    BindingView,
    DeskToken,
    IdentifierBinding,
)

__all__ = ["router"]

router = APIRouter(tags=["onboarding"])
AuthorityPath = Annotated[str, Path(pattern=r"^oba_[0-9A-Z]{26}$")]
_OPERATION = "onboarding.bind"


class AuthorityCreate(BaseModel):
    """An onboarding authority to designate: a bank names its lender client."""

    model_config = ConfigDict(extra="forbid")
    kind: onboarding.AuthorityKind
    name: Annotated[str, Field(min_length=1, max_length=200)]
    lender_client_id: Annotated[str, Field(pattern=lenders.CLIENT_ID_PATTERN)] | None = None


class AuthorityUpdate(BaseModel):
    """Deactivate (or reactivate) an authority."""

    model_config = ConfigDict(extra="forbid")
    active: bool


@router.post(
    "/v1/admin/onboarding-authorities",
    status_code=status.HTTP_201_CREATED,
    summary="Designate an onboarding authority (a bank, or an issuer desk with its own token).",
    responses=answers(AuthorityCreated, 401, 404, 409, 422, status=201),
    # A bank's answer has no token members (left unset); lender_client_id may be null.
    response_model_exclude_unset=True,
)
def designate(
    body: AuthorityCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    response: Response,
) -> AuthorityCreated:
    # Only an administrator learns whether a lender client exists.
    if (
        body.lender_client_id is not None
        and principal.is_admin
        and lenders.get_client(session, body.lender_client_id) is None
    ):
        raise NotFoundError("no such lender client")
    response.headers.update(NO_STORE)
    return onboarding.register_authority(
        session,
        runtime,
        principal,
        kind=body.kind,
        name=body.name,
        lender_client_id=body.lender_client_id,
    )


@router.get(
    "/v1/admin/onboarding-authorities",
    summary="Every onboarding authority.",
    responses=answers(list[AuthorityView], 401, 404),
)
def list_all(session: ReadSessionDep, principal: PrincipalDep) -> list[AuthorityView]:
    return onboarding.list_authorities(session, principal)


@router.patch(
    "/v1/admin/onboarding-authorities/{authority_id}",
    summary="(De)activate an authority.",
    responses=answers(AuthorityView, 401, 404, 422),
)
def update(
    authority_id: AuthorityPath,
    body: AuthorityUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> AuthorityView:
    return onboarding.set_authority_active(
        session, runtime, principal, authority_id, active=body.active
    )


@router.post(
    "/v1/admin/onboarding-authorities/{authority_id}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="A new bearer token for an issuer desk (shown once).",
    responses=answers(DeskToken, 401, 404, 422, status=201),
)
def desk_token(
    authority_id: AuthorityPath,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    response: Response,
) -> DeskToken:
    response.headers.update(NO_STORE)
    return onboarding.issue_desk_token(session, runtime, principal, authority_id)


@router.post(
    "/v1/onboarding/bindings",
    status_code=status.HTTP_201_CREATED,
    summary="Bind an identifier to an identity on an onboarding authority's attestation.",
    responses=answers(BindingView, 401, 403, 404, 409, 422, status=201),
)
def bind(
    body: IdentifierBinding,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
) -> BindingView:
    # An issuer desk presents its own bearer token; anything else must be a lender's access
    # token (refused as every lender authentication failure is: 401, access.denied).
    if authorization is not None and authorization.startswith("Bearer cct_"):
        who = identity_auth.authenticate(session, runtime, authorization).subject
    else:
        lender = authenticate_request(request, authorization, _OPERATION, session)
        who = onboarding.bank_principal(lender.client_id)
    authority = onboarding.authority_for(session, who)
    return onboarding.bind_identifier(session, runtime, authority, body)
