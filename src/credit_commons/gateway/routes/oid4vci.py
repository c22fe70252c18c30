"""HTTP endpoints of OID4VCI 1.0 (pre-authorized code flow) — see ``oid4vci.py``."""

from __future__ import annotations

import io
from typing import Annotated, Literal
from urllib.parse import parse_qs

import segno
from fastapi import APIRouter, FastAPI, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject
from credit_commons.gateway.community_tier import with_community_tier
from credit_commons.gateway.deps import NO_STORE, PrincipalDep, RuntimeDep, SessionDep
from credit_commons.gateway.openapi import answers, media, oauth_errors
from credit_commons.issuer import oid4vci
from credit_commons.issuer.schemas import (
    AuthorizationServerMetadata,
    CredentialIssuerMetadata,
    CredentialOffer,
    CredentialResponse,
    NonceResponse,
    OfferCreated,
    TokenResponse,
)
from credit_commons.runtime import Runtime

__all__ = ["install_oauth_errors", "router"]

router = APIRouter(tags=["OID4VCI"])
OfferPath = Annotated[str, Path(pattern=r"^off_[0-9A-Z]{26}$")]


def install_oauth_errors(app: FastAPI) -> None:
    """Answer OID4VCI/OAuth errors as ``{"error", "error_description"}`` (RFC 6749 §5.2)."""

    @app.exception_handler(oid4vci.OAuthError)
    async def _oauth(_request: Request, error: oid4vci.OAuthError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=NO_STORE)


class OfferRequest(BaseModel):
    """An offer an issuer operator creates for a subject."""

    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")]
    subject: Annotated[str, Field(pattern=r"^idt_[a-zA-Z0-9]{12,32}$")]
    claims: JsonObject
    tx_code: bool = True
    format: Literal["dc+sd-jwt", "vc+jwt"] = "dc+sd-jwt"


@router.get(
    "/.well-known/openid-credential-issuer",
    summary="Credential Issuer Metadata.",
    responses=answers(CredentialIssuerMetadata),
)
def issuer_metadata(session: SessionDep, runtime: RuntimeDep) -> CredentialIssuerMetadata:
    return oid4vci.credential_issuer_metadata(session, runtime)


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorization Server Metadata.",
    responses=answers(AuthorizationServerMetadata),
)
def as_metadata(runtime: RuntimeDep) -> AuthorizationServerMetadata:
    return oid4vci.authorization_server_metadata(runtime)


@router.post(
    "/v1/credential-offers",
    status_code=201,
    summary="Create a credential offer.",
    responses=answers(OfferCreated, 401, 404, 409, 422, status=201),
)
def create_offer(
    body: OfferRequest,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    response: Response,
) -> OfferCreated:
    created = oid4vci.create_offer(
        session,
        runtime,
        principal,
        type_name=body.type,
        subject_token=body.subject,
        claims=body.claims,
        with_tx_code=body.tx_code,
        credential_format=body.format,
    )
    response.headers.update(NO_STORE)
    return created


@router.get(
    "/v1/credential-offers/{offer_id}",
    summary="A credential offer by reference.",
    responses=answers(CredentialOffer, 404, 422),
)
def get_offer(
    offer_id: OfferPath, session: SessionDep, runtime: RuntimeDep, response: Response
) -> CredentialOffer:
    response.headers.update(NO_STORE)
    return oid4vci.get_offer(session, runtime, offer_id)


@router.get(
    "/v1/credential-offers/{offer_id}/qr.svg",
    summary="The offer (by reference) as a QR code.",
    response_class=Response,
    responses=media({"image/svg+xml": {"type": "string"}}, 404, 422),
)
def offer_qr(offer_id: OfferPath, session: SessionDep, runtime: RuntimeDep) -> Response:
    oid4vci.get_offer(session, runtime, offer_id)  # 404 unless it exists
    uri = f"openid-credential-offer://?credential_offer_uri={runtime.settings.public_url.rstrip('/')}/v1/credential-offers/{offer_id}"
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4)
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers=NO_STORE)


@router.post(
    "/token",
    summary="Token endpoint (pre-authorized code).",
    responses={**answers(TokenResponse), **oauth_errors(400)},
)
async def token(request: Request, response: Response) -> TokenResponse:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise oid4vci.OAuthError("invalid_request", "the token request must be form-encoded")
    raw = await request.body()
    if len(raw) > 8192:
        raise oid4vci.OAuthError("invalid_request", "the token request is too large")
    fields = {
        k: v[0]
        for k, v in parse_qs(raw.decode("utf-8", "replace"), strict_parsing=False).items()
        if len(v) == 1
    }
    runtime: Runtime = request.app.state.runtime

    def run() -> TokenResponse | oid4vci.OAuthError:
        with transaction(runtime.sessions) as session:
            return oid4vci.token(session, runtime, fields)

    result = await run_in_threadpool(run)  # committed, also when it is an error
    if isinstance(result, oid4vci.OAuthError):
        raise result
    response.headers.update(NO_STORE)
    return result


@router.post("/nonce", summary="Nonce endpoint.", responses=answers(NonceResponse))
def nonce(session: SessionDep, runtime: RuntimeDep, response: Response) -> NonceResponse:
    response.headers.update(NO_STORE)
    return oid4vci.new_nonce(session, runtime)


@router.post(
    "/credential",
    summary="Credential endpoint.",
    responses={**answers(CredentialResponse, 422), **oauth_errors(400, 401)},
)
def credential(
    body: JsonObject,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> CredentialResponse:
    response.headers.update(NO_STORE)
    # Issue 19: a Credit Readiness Credential gets its holder's community tier here, where
    # the holder key becomes known.
    return oid4vci.issue_from_request(
        session, runtime, authorization, body, complete=with_community_tier
    )
