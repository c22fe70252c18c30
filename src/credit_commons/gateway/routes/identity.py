"""HTTP API of identities (after seed 003 §10), under ``/v1/identities``.

Every call but registration needs ``Authorization: Bearer cct_…``; the caller must be the
identity, the owner of an enterprise identity, or an administrator.  Anything else — an
unknown token, someone else's identity — is the same 404, so nothing is revealed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response, status

from credit_commons.core.errors import NotFoundError
from credit_commons.gateway.deps import NO_STORE, PrincipalDep, RuntimeDep, SessionDep
from credit_commons.gateway.openapi import JwkSet, answers
from credit_commons.identity import attestations, auth, delegations, service
from credit_commons.identity.predicates import PredicateRequest
from credit_commons.identity.schemas import (
    IDENTITY_TOKEN_PATTERN,
    AttestationView,
    DelegationCreate,
    DelegationView,
    IdentityCreate,
    IdentityCreated,
    IdentityUpdate,
    IdentityView,
    ProfileView,
)

__all__ = ["attestations_router", "router"]

router = APIRouter(prefix="/v1/identities", tags=["identities"])

TokenPath = Annotated[str, Path(pattern=IDENTITY_TOKEN_PATTERN)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register an identity.",
    responses=answers(IdentityCreated, 401, 404, 409, 422, status=201),
    # The new identity's identifiers are all unverified: no binding members.
    response_model_exclude_none=True,
)
def create(
    body: IdentityCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> IdentityCreated:
    # A person registers without a token; an enterprise is registered by its owner, who
    # authenticates.  The identifiers given are stored unverified either way.
    principal = auth.authenticate(session, runtime, authorization) if authorization else None
    response.headers.update(NO_STORE)
    return service.create_identity(session, runtime, body, principal)


@router.get(
    "/{token}",
    summary="Identity metadata (no personal data).",
    responses=answers(IdentityView, 401, 404, 422),
)
def read(
    token: TokenPath, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> IdentityView:
    return service.get_identity(session, runtime, principal, token)


@router.patch(
    "/{token}",
    summary="Change roles or verification level (administrators).",
    responses=answers(IdentityView, 401, 404, 422),
)
def update(
    token: TokenPath,
    body: IdentityUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> IdentityView:
    return service.update_identity(session, runtime, principal, token, body)


@router.get(
    "/{token}/profile",
    summary="The identity's personal fields.",
    responses=answers(ProfileView, 401, 404, 422),
    # Only the fields the identity has (the profile never stores a null).
    response_model_exclude_none=True,
)
def profile(
    token: TokenPath,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    response: Response,
) -> ProfileView:
    response.headers.update(NO_STORE)
    return service.get_profile(session, runtime, principal, token)


@router.post(
    "/{token}/verify",
    summary="A signed attestation of predicates (booleans only).",
    responses=answers(AttestationView, 401, 404, 422),
)
def verify(
    token: TokenPath,
    body: PredicateRequest,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    response: Response,
) -> AttestationView:
    response.headers.update(NO_STORE)
    return attestations.attest(session, runtime, principal, token, body)


attestations_router = APIRouter(prefix="/v1/attestations", tags=["identities"])


@attestations_router.get(
    "/jwks", summary="Keys that sign predicate attestations.", responses=answers(JwkSet)
)
def attestation_keys(session: SessionDep, runtime: RuntimeDep) -> JwkSet:
    attestations.attestation_signer(session, runtime)
    return JwkSet(
        keys=[v.jwk() for v in runtime.key_store.versions(session, attestations.ATTESTATION_KEY)]
    )


DelegationPath = Annotated[str, Path(pattern=r"^dlg_[0-9A-Z]{26}$")]


@router.post(
    "/{token}/delegations",
    status_code=status.HTTP_201_CREATED,
    summary="Offer a delegation.",
    responses=answers(DelegationView, 401, 404, 409, 422, status=201),
)
def delegate(
    token: TokenPath,
    body: DelegationCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> DelegationView:
    return delegations.create_delegation(session, runtime, principal, token, body)


@router.get(
    "/{token}/delegations",
    summary="Delegations this identity is a party to.",
    responses=answers(list[DelegationView], 401, 404, 422),
)
def list_delegations(
    token: TokenPath, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> list[DelegationView]:
    return delegations.list_delegations(session, runtime, principal, token)


@router.post(
    "/{token}/delegations/{delegation_id}/accept",
    summary="Accept (as the delegatee).",
    responses=answers(DelegationView, 401, 404, 409, 422),
)
def accept(
    token: TokenPath,
    delegation_id: DelegationPath,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> DelegationView:
    if principal.subject != token:
        raise NotFoundError("no such delegation")
    return delegations.accept_delegation(session, runtime, principal, delegation_id)


@router.delete(
    "/{token}/delegations/{delegation_id}",
    summary="Revoke (either party).",
    responses=answers(DelegationView, 401, 404, 422),
)
def revoke(
    token: TokenPath,
    delegation_id: DelegationPath,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> DelegationView:
    if not (principal.is_admin or principal.subject == token):
        raise NotFoundError("no such delegation")
    return delegations.revoke_delegation(session, runtime, principal, delegation_id)
