"""HTTP endpoints for lenders: client registration (administrators), the token endpoint,
the access-token keys, and the caller's own registration."""

from __future__ import annotations

from functools import partial
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from credit_commons import lenders
from credit_commons.consent.access import record_refusal
from credit_commons.core.db import transaction
from credit_commons.gateway import access_token, client_cert, oauth
from credit_commons.gateway.deps import (
    NO_STORE,
    PrincipalDep,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
)
from credit_commons.gateway.lender_deps import LenderDep
from credit_commons.gateway.openapi import JwkSet, answers, oauth_errors
from credit_commons.gateway.ratelimit import rate_limits, remember
from credit_commons.gateway.schemas import AccessTokenResponse, LenderSelf
from credit_commons.lenders import LenderClientView, LenderCreate, LenderUpdate
from credit_commons.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["lenders"])
ClientIdPath = Annotated[str, Path(pattern=lenders.CLIENT_ID_PATTERN)]
_TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
_MAX_FORM = 8192


@router.post(
    "/v1/admin/lenders",
    status_code=201,
    summary="Register a lender client.",
    responses=answers(LenderClientView, 401, 404, 422, status=201),
)
def register(
    body: LenderCreate, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> LenderClientView:
    return lenders.register_client(
        session,
        runtime,
        principal,
        name=body.name,
        jwks=body.jwks,
        allowed_purposes=body.allowed_purposes,
        webhook_url=body.webhook_url,
        tls_client_certificate=body.tls_client_certificate,
        tls_client_thumbprint=body.tls_client_thumbprint,
    )


@router.get(
    "/v1/admin/lenders/{client_id}",
    summary="A lender client.",
    responses=answers(LenderClientView, 401, 404, 422),
)
def read(
    client_id: ClientIdPath, session: ReadSessionDep, principal: PrincipalDep
) -> LenderClientView:
    return lenders.read_client(session, principal, client_id)


@router.patch(
    "/v1/admin/lenders/{client_id}",
    summary="Replace a lender's keys or certificate binding, or (de)activate it.",
    responses=answers(LenderClientView, 401, 404, 422),
)
def update(
    client_id: ClientIdPath,
    body: LenderUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> LenderClientView:
    return lenders.update_client(
        session,
        runtime,
        principal,
        client_id,
        jwks=body.jwks,
        allowed_purposes=body.allowed_purposes,
        webhook_url=body.webhook_url,
        clear_webhook="webhook_url" in body.model_fields_set and body.webhook_url is None,
        active=body.active,
        tls_client_certificate=body.tls_client_certificate,
        tls_client_thumbprint=body.tls_client_thumbprint,
        clear_certificate="tls_client_thumbprint" in body.model_fields_set
        and body.tls_client_thumbprint is None,
    )


async def _form(request: Request) -> dict[str, str]:
    # RFC 6749 §3.2: form-encoded, and no parameter more than once.
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise oauth.TokenError("invalid_request", "the token request must be form-encoded")
    raw = await request.body()
    if len(raw) > _MAX_FORM:
        raise oauth.TokenError("invalid_request", "the token request is too large")
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as e:
        raise oauth.TokenError("invalid_request", "the token request is malformed") from e
    if any(len(values) != 1 for values in parsed.values()):
        raise oauth.TokenError("invalid_request", "a parameter was sent more than once")
    return {name: values[0] for name, values in parsed.items()}


@router.post(
    "/oauth/token",
    summary="Token endpoint: client credentials with private_key_jwt (RFC 6749 §4.4, RFC 7523).",
    responses={**answers(AccessTokenResponse), **oauth_errors(400, 401)},
    response_model=AccessTokenResponse,  # its shape; answered as a JSONResponse for headers
)
async def token(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    # The address and credential limits were counted before routing (RateLimitMiddleware).
    limiter = rate_limits(rt)

    def authenticate(form: dict[str, str]) -> oauth.AuthenticatedClient:
        try:
            certificate = client_cert.presented_thumbprint(request)
        except client_cert.CertificateRefused as e:
            raise oauth.certificate_refused(e.reason, rt) from None
        with transaction(rt.read_sessions) as session:
            return oauth.authenticate_client(session, rt, form, certificate=certificate)

    def issue(client: oauth.AuthenticatedClient) -> AccessTokenResponse:
        with transaction(rt.sessions) as session:
            return oauth.issue_token(session, rt, client)

    try:
        client = await run_in_threadpool(authenticate, await _form(request))
        remember(request, await run_in_threadpool(limiter.hit_client, "token", client.client_id))
        body = await run_in_threadpool(issue, client)
    except oauth.TokenError as error:
        if error.reason is not None and error.actor is not None:
            # The request's transaction is over, so this write does not wait on it.  A
            # token request names no borrower: it is counted, never logged (anyone can
            # send one).
            await run_in_threadpool(
                partial(
                    record_refusal,
                    rt,
                    actor=error.actor,
                    operation=oauth.OPERATION,
                    reason=error.reason,
                    counter=request.app.state.denial_counter,
                )
            )
        return JSONResponse(error.body(), status_code=error.status, headers=_TOKEN_HEADERS)
    return JSONResponse(body.model_dump(mode="json"), headers=_TOKEN_HEADERS)


@router.get(
    "/oauth/jwks",
    summary="The keys that verify lender access tokens.",
    responses=answers(JwkSet),
)
def jwks(session: SessionDep, runtime: RuntimeDep) -> JwkSet:
    return access_token.oauth_jwks(session, runtime)


@router.get(
    "/v1/lender/client",
    summary="The calling lender's own registration.",
    responses=answers(LenderSelf, 401, 403),
)
def whoami(lender: LenderDep, session: ReadSessionDep, response: Response) -> LenderSelf:
    client = lenders.get_client(session, lender.client_id)
    response.headers.update(NO_STORE)
    return LenderSelf(
        client_id=lender.client_id,
        name=client.name if client else None,
        allowed_purposes=sorted(lender.purposes),
        scope=" ".join(sorted(lender.scopes)),
    )
