"""HTTP API of the credential catalogue, under ``/v1/credential-types``."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal, Self

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from credit_commons import verifier
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError
from credit_commons.gateway.community_tier import with_community_tier
from credit_commons.gateway.deps import PrincipalDep, ReadSessionDep, RuntimeDep, SessionDep
from credit_commons.gateway.openapi import answers, media
from credit_commons.identity import Principal
from credit_commons.issuer import (
    credentials,
    documents,
    registry,
    service,
    status,
)
from credit_commons.issuer.schemas import (
    BatchIssue,
    CredentialRecord,
    CredentialTypeView,
    DidDocument,
    IssuedBatch,
    IssuedCredential,
    IssueItem,
    JwtVcIssuerMetadata,
    StatusChanged,
)
from credit_commons.verifier.schemas import (
    PresentationCheck,
    SdJwtVerified,
    TrustedIssuerView,
    VcJwtVerified,
)

__all__ = ["credentials_router", "router", "status_router", "trust_router"]

router = APIRouter(prefix="/v1/credential-types", tags=["credential catalogue"])


class TypeDefinition(BaseModel):
    """A credential type as submitted by an administrator."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=64)]
    vct: Annotated[str, Field(max_length=255)]
    schema_: Annotated[JsonObject, Field(alias="schema")]
    disclosable: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=64)] = []
    default_validity_days: Annotated[int, Field(ge=1, le=3650)] = 365


@router.get("", summary="Every credential type.", responses=answers(list[CredentialTypeView]))
def list_types(session: SessionDep, runtime: RuntimeDep) -> list[CredentialTypeView]:
    return [t.view() for t in service.list_types(session, runtime)]


@router.get(
    "/{name}", summary="One credential type.", responses=answers(CredentialTypeView, 404, 422)
)
def get_type(
    name: Annotated[str, Path(pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")],
    session: SessionDep,
    runtime: RuntimeDep,
) -> CredentialTypeView:
    return service.get_type(session, runtime, name).view()


@router.put(
    "",
    summary="Add or replace a credential type (administrators).",
    responses=answers(CredentialTypeView, 401, 404, 409, 422),
)
def put_type(
    body: TypeDefinition, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> CredentialTypeView:
    definition = body.model_dump(by_alias=True)
    return service.put_type(session, runtime, principal, definition).view()


status_router = APIRouter(tags=["status lists"])


def _accepts_cwt(accept: str | None) -> bool:
    """Whether ``Accept`` prefers the CWT form of a Token Status List: it names
    ``application/statuslist+cwt`` with a weight above zero and at least that of anything
    else it names (RFC 9110 §12.5.1; the type named exactly wins a tie with a wildcard)."""
    weights: dict[str, float] = {}
    for item in (accept or "").split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media_type:
            weights[media_type.lower()] = max(weight, weights.get(media_type.lower(), 0.0))
    cwt = weights.pop(status.CWT_MEDIA_TYPE, 0.0)
    return cwt > 0 and cwt >= max(weights.values(), default=0.0)


@status_router.get(
    "/status-lists/{list_id}",
    summary="A signed status list.",
    response_class=Response,
    responses={
        **media(
            {
                "application/statuslist+jwt": {
                    "type": "string",
                    "description": "IETF Token Status List, a JWT",
                },
                "application/statuslist+cwt": {
                    "type": "string",
                    "format": "binary",
                    "description": "IETF Token Status List, a CWT (COSE_Sign1), when the "
                    "Accept header prefers it",
                },
                "application/vc+jwt": {
                    "type": "string",
                    "description": "W3C BitstringStatusListCredential (VCDM 2.0), a vc+jwt",
                },
            },
            404,
            406,
            422,
        ),
        304: {"description": "Not modified (If-None-Match named the current ETag)."},
    },
)
def status_list(
    list_id: Annotated[str, Path(pattern=r"^sl_[0-9A-Z]{26}$")],
    session: SessionDep,
    runtime: RuntimeDep,
    if_none_match: Annotated[str | None, Header()] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    cwt = _accepts_cwt(accept)
    rendered = status.render(session, runtime, list_id, cwt=cwt)
    etag = f'"{list_id}-{rendered.version}{"-cwt" if cwt else ""}"'
    headers = {"Cache-Control": "public, max-age=300", "ETag": etag, "Vary": "Accept"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(rendered.token, media_type=rendered.media_type, headers=headers)


credentials_router = APIRouter(tags=["credentials"])


IssueRequest = IssueItem  # the single-issue body is one batch item


class CredentialCheck(BaseModel):
    """A credential to verify: a W3C credential (``jwt_vc_json``, the default, or
    ``vc+jwt``: the W3C verifier tells a VCDM 1.1 JWT from a VCDM 2.0 ``vc+jwt`` by its
    ``typ`` and answers which it was), or an issuer-signed SD-JWT VC when the caller says
    that is what it expects (``"format": "dc+sd-jwt"`` with ``"key_binding": "none"``;
    presentations with key binding go to ``/v1/presentations/verify``)."""

    model_config = ConfigDict(extra="forbid")
    credential: Annotated[str, Field(max_length=65536)]
    format: Literal["jwt_vc_json", "vc+jwt", "dc+sd-jwt"] = "jwt_vc_json"
    key_binding: Literal["none"] | None = None

    @model_validator(mode="after")
    def _expectation_is_explicit(self) -> Self:
        # An SD-JWT without key binding is verified only when asked for in so many words,
        # so that nobody mistakes this route for presentation verification.
        if self.format == "dc+sd-jwt" and self.key_binding != "none":
            raise ValueError('a dc+sd-jwt credential needs "key_binding": "none"')
        if self.format != "dc+sd-jwt" and self.key_binding is not None:
            raise ValueError("key_binding applies to dc+sd-jwt credentials only")
        return self


@credentials_router.get(
    "/.well-known/did.json",
    summary="The issuer's did:web document.",
    responses=answers(DidDocument),
)
def did_web(session: SessionDep, runtime: RuntimeDep) -> DidDocument:
    return documents.did_document(session, runtime)


@credentials_router.get(
    "/.well-known/jwt-vc-issuer",
    summary="JWT VC Issuer Metadata.",
    responses=answers(JwtVcIssuerMetadata),
)
def jwt_vc_issuer(session: SessionDep, runtime: RuntimeDep) -> JwtVcIssuerMetadata:
    return documents.issuer_metadata(session, runtime)


@credentials_router.post(
    "/v1/credentials",
    status_code=201,
    summary="Issue an SD-JWT VC.",
    responses=answers(IssuedCredential, 401, 404, 409, 422, status=201),
)
def issue_credential(
    body: IssueRequest, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> IssuedCredential:
    return credentials.issue_credential(
        session,
        runtime,
        principal,
        type_name=body.type,
        subject_token=body.subject,
        claims=_with_community_tier(session, principal, body.request()).claims,
        holder_jwk=body.holder_jwk,
        credential_format=body.format,
    )


def _with_community_tier(
    session: Session, principal: Principal, request: credentials.IssueRequest
) -> credentials.IssueRequest:
    # Issue 19: a Credit Readiness Credential issued to a holder key whose did:key holds a
    # capability credential carries that community tier (a disclosable claim), unless the
    # issuer sent one.  Only for a caller allowed to issue (the others are refused anyway).
    if not principal.is_admin:
        return request
    claims = with_community_tier(
        session, request.type_name, request.claims, dict(request.holder_jwk)
    )
    return request if claims is request.claims else replace(request, claims=claims)


@credentials_router.post(
    "/v1/credentials/batch",
    status_code=201,
    summary="Issue up to 1,000 credentials, all or none.",
    responses=answers(IssuedBatch, 401, 404, 409, 422, status=201),
)
def issue_credentials(
    body: BatchIssue, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> IssuedBatch:
    # One transaction (the request's): a failing item fails the batch, and its problem
    # names the item's position as ``item``.
    requests = [_with_community_tier(session, principal, item.request()) for item in body.items]
    try:
        issued = credentials.issue_credentials(session, runtime, principal, requests)
    except CommonsError as e:
        if len(requests) == 1 and principal.is_admin:  # never for a refused caller
            e.extra.setdefault("item", 0)
        raise
    return IssuedBatch(items=issued)


@credentials_router.get(
    "/v1/credentials",
    summary="A subject's credentials (registry metadata).",
    responses=answers(list[CredentialRecord], 401, 404, 422),
)
def list_credentials(
    subject: Annotated[str, Query(pattern=r"^idt_[a-zA-Z0-9]{12,32}$")],
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> list[CredentialRecord]:
    return registry.list_credentials(session, runtime, principal, subject)


@credentials_router.post(
    "/v1/credentials/{credential_id}/{action}",
    summary="Revoke, suspend, reinstate.",
    responses=answers(StatusChanged, 401, 404, 409, 422),
)
def change_status(
    credential_id: Annotated[str, Path(pattern=r"^crd_[0-9A-Z]{26}$")],
    action: registry.StatusAction,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> StatusChanged:
    return registry.change_status(session, runtime, principal, credential_id, action)


@credentials_router.post(
    "/v1/credentials/verify",
    summary="Verify a W3C credential (VCDM 1.1 JWT or 2.0 vc+jwt), or an SD-JWT VC without "
    "key binding.",
    responses=answers(VcJwtVerified | SdJwtVerified, 400, 422, 502),
)
def verify_credential(
    body: CredentialCheck, session: ReadSessionDep, runtime: RuntimeDep
) -> VcJwtVerified | SdJwtVerified:
    if body.format == "dc+sd-jwt":
        return verifier.verify_sd_jwt_credential(session, runtime, body.credential)
    return verifier.verify_vc_jwt_credential(session, runtime, body.credential)


@credentials_router.post(
    "/v1/presentations/verify",
    summary="Verify an SD-JWT VC presentation.",
    responses=answers(SdJwtVerified, 400, 422, 502),
)
def verify_presentation(
    body: PresentationCheck, session: ReadSessionDep, runtime: RuntimeDep
) -> SdJwtVerified:
    return verifier.verify_presentation(
        session, runtime, body.presentation, audience=body.audience, nonce=body.nonce
    )


trust_router = APIRouter(prefix="/v1/admin/trusted-issuers", tags=["trusted issuers"])


class TrustedIssuer(BaseModel):
    """An issuer to trust: an https issuer URL, a did:web or a did:key."""

    model_config = ConfigDict(extra="forbid")
    issuer: Annotated[str, Field(min_length=8, max_length=512)]


@trust_router.get(
    "",
    summary="The trusted issuers (administrators).",
    responses=answers(list[TrustedIssuerView], 401, 404),
)
def list_trusted(
    session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> list[TrustedIssuerView]:
    return verifier.list_trusted_issuers(session, runtime, principal)


@trust_router.post(
    "",
    status_code=201,
    summary="Trust an issuer (administrators).",
    responses=answers(TrustedIssuerView, 401, 404, 409, 422, status=201),
)
def add_trusted(
    body: TrustedIssuer, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> TrustedIssuerView:
    return verifier.add_trusted_issuer(session, runtime, principal, body.issuer)


@trust_router.delete(
    "/{entry_id}",
    summary="Stop trusting an issuer (administrators).",
    responses=answers(TrustedIssuerView, 401, 404, 422),
)
def remove_trusted(
    entry_id: Annotated[str, Path(pattern=r"^tis_[0-9A-Z]{26}$")],
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> TrustedIssuerView:
    return verifier.remove_trusted_issuer(session, runtime, principal, entry_id)
