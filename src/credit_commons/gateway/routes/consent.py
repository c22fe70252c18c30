"""HTTP API of consent: the lender's side (OAuth access tokens with scopes), the
borrower's side (their own bearer token), and assisted consent (a field agent's token).

Lender routes answer every refusal of data with the same 403 "not permitted"; the reason
goes to the log (``access.denied``) and to the borrower's access history.
"""

from __future__ import annotations

from typing import Annotated, Literal

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy.orm import Session

from credit_commons.consent import artefacts as consent_artefacts
from credit_commons.consent import assisted as consent_assisted
from credit_commons.consent import check as consent_check
from credit_commons.consent import decisions, denial_counts, history, holder_auth, retrieval
from credit_commons.consent import requests as consent_requests
from credit_commons.consent.access import Denied
from credit_commons.consent.model import ConsentRequest, ConsentStatus
from credit_commons.consent.schemas import (
    AccessRecord,
    AssistAnswer,
    AssistGranted,
    AssistStarted,
    ConsentDecision,
    ConsentView,
    DenialCount,
    DiscoveredBorrower,
    DiscoverySetting,
    HolderKeyChanged,
    RetrievedCredential,
    RevokedAll,
)
from credit_commons.core.db import transaction
from credit_commons.gateway.deps import (
    NO_STORE,
    PrincipalDep,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
)
from credit_commons.gateway.lender_deps import (
    LenderPrincipal,
    authenticate_request,
    lender_for,
    require_scope,
)
from credit_commons.gateway.openapi import JwkSet, answers
from credit_commons.identity import auth as identity_auth
from credit_commons.identity.schemas import IDENTITY_TOKEN_PATTERN
from credit_commons.runtime import Runtime

__all__ = ["borrower_router", "lender_router", "operator_router"]

lender_router = APIRouter(tags=["consent (lenders)"])
borrower_router = APIRouter(tags=["consent (borrowers)"])
operator_router = APIRouter(tags=["consent (operators)"])

ConsentId = Annotated[str, Path(pattern=r"^cns_[0-9A-Z]{26}$")]
Token = Annotated[str, Path(pattern=IDENTITY_TOKEN_PATTERN)]
_PATHS = Annotated[
    str,
    StringConstraints(pattern=r"^(/[A-Za-z0-9_]{1,64}){1,4}(,(/[A-Za-z0-9_]{1,64}){1,4}){0,31}$"),
]


RequestingLender = Annotated[LenderPrincipal, Depends(lender_for("consent.request"))]
ReadingLender = Annotated[LenderPrincipal, Depends(lender_for("consent.read"))]
RetrievingLender = Annotated[LenderPrincipal, Depends(lender_for(retrieval.OPERATION))]
DiscoveringLender = Annotated[LenderPrincipal, Depends(lender_for("discovery.read"))]


def _require_scope(
    session: Session,
    runtime: Runtime,
    lender: LenderPrincipal,
    scope: str,
    *,
    operation: str,
    consent_id: str | None = None,
) -> None:
    # require_scope, whose refusal names the borrower when the request named one of their
    # consents: it is then an attempt on their data (an event in their history), not a
    # refusal about nobody (only counted).
    try:
        require_scope(lender, scope, operation=operation)
    except Denied as e:
        row = consent_check.read_consent(session, consent_id) if consent_id else None
        if row is None:
            raise
        raise consent_check.denial(
            runtime, lender, row, consent_id=row.id, operation=operation, reason=e.reason
        ) from e


def _retrieval_limiter(request: Request) -> CapacityLimiter:
    # Retrievals run at most two at a time per app: each is CPU under one GIL and ends in
    # a write that SQLite serialises anyway, so more threads only add switching (measured:
    # 8 threads served fewer requests per second than one).  Requests beyond that wait in
    # the event loop, in order.  Made on first use, inside the app's event loop.
    limiter = getattr(request.app.state, "retrieval_limiter", None)
    if not isinstance(limiter, CapacityLimiter):
        limiter = request.app.state.retrieval_limiter = CapacityLimiter(2)
    return limiter


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Signature(_Strict):
    """A DID signature (base64url) over ``decisions.approval_message``."""

    signature: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{40,200}$")]


class Code(_Strict):
    """The one-time code the borrower received."""

    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class RevokeAll(_Strict):
    """Which lender's consents to revoke."""

    lender: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,8}_[0-9A-Za-z_-]{8,64}$")]


class HolderKey(_Strict):
    """The new DID, and the new key's signature (base64url) of the rotation message."""

    did: Annotated[
        str, StringConstraints(max_length=512, pattern=r"^did:(key|web):[A-Za-z0-9._:%-]+$")
    ]
    signature: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{40,200}$")]


class Discoverable(_Strict):
    """Opt in to or out of discovery."""

    enabled: bool


# -- lenders -----------------------------------------------------------------------------


@lender_router.get(
    "/v1/consents/jwks",
    summary="Keys that sign artefacts and webhooks.",
    responses=answers(JwkSet),
)
def consent_jwks(session: SessionDep, runtime: RuntimeDep) -> JwkSet:
    return JwkSet(keys=[v.jwk() for v in consent_artefacts.consent_key_versions(session, runtime)])


@lender_router.post(
    "/v1/consents",
    status_code=status.HTTP_201_CREATED,
    summary="Request consent.",
    responses=answers(ConsentView, 401, 403, 404, 422, status=201),
    response_model_exclude_unset=True,
)
def request_consent(
    body: ConsentRequest, session: SessionDep, runtime: RuntimeDep, lender: RequestingLender
) -> ConsentView:
    try:
        require_scope(lender, "consent:request", operation="consent.request")
    except Denied as e:
        # A request that names an existing borrower is an attempt on them: logged for them.
        subject = consent_requests.borrower_subject(session, runtime, lender, body.borrower)
        if subject is None:
            raise
        raise Denied(operation=e.operation, reason=e.reason, actor=e.actor, subject=subject) from e
    return consent_requests.request_consent(session, runtime, lender, body)


@lender_router.get(
    "/v1/consents/{consent_id}",
    summary="A consent's status and artefact.",
    responses=answers(ConsentView, 401, 403, 404, 422),
    response_model_exclude_unset=True,
)
def read_consent(
    consent_id: ConsentId, session: SessionDep, runtime: RuntimeDep, lender: ReadingLender
) -> ConsentView:
    _require_scope(
        session, runtime, lender, "consent:read", operation="consent.read", consent_id=consent_id
    )
    return consent_requests.get_for_lender(session, runtime, lender, consent_id)


@lender_router.get(
    "/v1/lender/credentials",
    summary="A credential under consent.",
    responses=answers(RetrievedCredential, 401, 403, 404, 422),
)
async def retrieve_credential(
    request: Request,
    consent_id: Annotated[str, Query(pattern=r"^cns_[0-9A-Z]{26}$")],
    runtime: RuntimeDep,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
    type_name: Annotated[
        str | None, Query(alias="type", pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")
    ] = None,
    claims: Annotated[_PATHS | None, Query()] = None,
) -> RetrievedCredential:
    def authenticate(session: Session) -> LenderPrincipal:
        lender = authenticate_request(request, authorization, retrieval.OPERATION, session)
        _require_scope(
            session,
            runtime,
            lender,
            "credentials:read",
            operation=retrieval.OPERATION,
            consent_id=consent_id,
        )
        return lender

    def handle() -> RetrievedCredential:
        # Authentication, rate limits and the units of work (a read, then a short write)
        # in one worker thread: the hot path hops to the thread pool once; the token's
        # client is checked in the retrieval's read unit of work; on SQLite the writer is
        # held for the write only.
        return retrieval.retrieve_authenticating(
            runtime,
            authenticate,
            consent_id,
            type_name=type_name,
            claims=claims.split(",") if claims else None,
        )

    result = await to_thread.run_sync(handle, limiter=_retrieval_limiter(request))
    # VIEW: look, do not keep.  STORE: the lender may keep it for the data life.
    response.headers["Cache-Control"] = "no-store" if result.mode == "VIEW" else "private"
    return result


class ArtefactRetrieval(_Strict):
    """Retrieval by presenting the signed consent artefact (as an AA FI request does)."""

    artefact: Annotated[str, StringConstraints(min_length=20, max_length=16_384)]
    type: Annotated[str | None, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")] = None
    claims: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^(/[A-Za-z0-9_]{1,64}){1,4}$")]] | None,
        Body(),
    ] = None


@lender_router.post(
    "/v1/lender/credentials",
    summary="A credential under a presented artefact.",
    responses=answers(RetrievedCredential, 401, 403, 404, 422),
)
def retrieve_by_artefact(
    body: ArtefactRetrieval,
    runtime: RuntimeDep,
    lender: RetrievingLender,
    response: Response,
) -> RetrievedCredential:
    with transaction(runtime.read_sessions) as session:
        _require_scope(
            session,
            runtime,
            lender,
            "credentials:read",
            operation=retrieval.OPERATION,
            consent_id=retrieval.named_consent(body.artefact),
        )
        consent_id = retrieval.consent_of_artefact(session, runtime, lender, body.artefact)
    result = retrieval.retrieve(
        runtime, lender, consent_id, type_name=body.type, claims=body.claims
    )
    response.headers["Cache-Control"] = "no-store" if result.mode == "VIEW" else "private"
    return result


@lender_router.get(
    "/v1/lender/discovery",
    summary="Opted-in borrowers' public attributes.",
    responses=answers(list[DiscoveredBorrower], 401, 403, 422),
)
def discovery(
    session: SessionDep,
    runtime: RuntimeDep,
    lender: DiscoveringLender,
    credit_tier: Annotated[Literal["A", "B", "C"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DiscoveredBorrower]:
    require_scope(lender, "discovery:read", operation="discovery.read")
    return retrieval.discover(session, runtime, lender, credit_tier=credit_tier, limit=limit)


# -- borrowers ---------------------------------------------------------------------------


async def _raw_body(request: Request) -> bytes:
    # Starlette keeps the body it read, so a handler's own body parameter still sees it.
    return await request.body()


def get_borrower(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    body: Annotated[bytes, Depends(_raw_body)],
    authorization: Annotated[str | None, Header()] = None,
) -> identity_auth.Principal:
    """The caller of a borrower route: an identity bearer token (``Bearer cct_…``), or a
    request signed by the borrower's DID key (``Holder <proof>``, consent/holder_auth.py).

    Raises ``UnauthorizedError`` or ``NotAuthenticated`` (401) otherwise.
    """
    scheme = holder_auth.SCHEME + " "
    if authorization is not None and authorization.startswith(scheme):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return holder_auth.authenticate(
            session,
            runtime,
            authorization[len(scheme) :].strip(),
            method=request.method,
            target=target,
            body=body,
        )
    return identity_auth.authenticate(session, runtime, authorization)


BorrowerDep = Annotated[identity_auth.Principal, Depends(get_borrower)]


@borrower_router.get(
    "/v1/borrowers/{token}/consents",
    summary="The borrower's consents.",
    responses=answers(list[ConsentView], 401, 404, 422),
    response_model_exclude_unset=True,
)
def list_consents(
    token: Token,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: BorrowerDep,
    response: Response,
    status_filter: Annotated[ConsentStatus | None, Query(alias="status")] = None,
) -> list[ConsentView]:
    response.headers.update(NO_STORE)
    value = status_filter.value if status_filter is not None else None
    return consent_requests.list_for_borrower(session, runtime, principal, token, value)


@borrower_router.get(
    "/v1/borrowers/consents/{consent_id}",
    summary="One of the borrower's consents.",
    responses=answers(ConsentView, 401, 404, 422),
    response_model_exclude_unset=True,
)
def get_consent(
    consent_id: ConsentId, session: SessionDep, runtime: RuntimeDep, principal: BorrowerDep
) -> ConsentView:
    return consent_requests.get_for_borrower(session, runtime, principal, consent_id)


@borrower_router.post(
    "/v1/borrowers/consents/{consent_id}/{action}",
    summary="Approve, reject, pause, resume or revoke a consent.",
    responses=answers(ConsentDecision, 401, 404, 409, 422),
    response_model_exclude_unset=True,
)
def decide(
    consent_id: ConsentId,
    action: Annotated[Literal["approve", "reject", "pause", "resume", "revoke"], Path()],
    session: SessionDep,
    runtime: RuntimeDep,
    principal: BorrowerDep,
) -> ConsentDecision:
    return decisions.decide(session, runtime, principal, consent_id, action)


@borrower_router.post(
    "/v1/consents/{consent_id}/signed-approval",
    summary="Approve with a signature by the borrower's DID key (no session needed).",
    responses=answers(ConsentDecision, 404, 409, 422),
    response_model_exclude_unset=True,
)
def signed_approval(
    consent_id: ConsentId, body: Signature, session: SessionDep, runtime: RuntimeDep
) -> ConsentDecision:
    return decisions.decide(session, runtime, None, consent_id, "approve", signature=body.signature)


@borrower_router.post(
    "/v1/borrowers/{token}/consents/revoke-all",
    summary="Revoke every consent given to one lender.",
    responses=answers(RevokedAll, 401, 404, 422),
)
def revoke_all(
    token: Token,
    body: RevokeAll,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: BorrowerDep,
) -> RevokedAll:
    return decisions.revoke_all(session, runtime, principal, token, body.lender)


@borrower_router.get(
    "/v1/borrowers/{token}/access-history",
    summary="Who saw what, when, allowed or denied — each with its log receipt.",
    responses=answers(list[AccessRecord], 401, 404, 422),
)
def access_history(
    token: Token,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: BorrowerDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AccessRecord]:
    response.headers.update(NO_STORE)
    return history.access_history(session, runtime, principal, token, limit=limit)


@borrower_router.post(
    "/v1/borrowers/{token}/holder-key",
    summary="Replace the borrower's DID, in a request signed by the current one.",
    responses=answers(HolderKeyChanged, 401, 404, 409, 422),
)
def change_holder_key(
    token: Token,
    body: HolderKey,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: BorrowerDep,
) -> HolderKeyChanged:
    return holder_auth.change_key(
        session, runtime, principal, token, did=body.did, signature=body.signature
    )


@borrower_router.put(
    "/v1/borrowers/{token}/discovery",
    summary="Opt in to or out of discovery.",
    responses=answers(DiscoverySetting, 401, 404, 422),
    response_model_exclude_none=True,
)
def set_discovery(
    token: Token,
    body: Discoverable,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: BorrowerDep,
) -> DiscoverySetting:
    return retrieval.set_discoverable(session, runtime, principal, token, enabled=body.enabled)


# -- assisted consent --------------------------------------------------------------------


@borrower_router.post(
    "/v1/consents/{consent_id}/assist",
    summary="A field agent prepares a consent; a one-time code goes to the borrower.",
    responses=answers(AssistStarted, 401, 404, 409, 422),
)
def assist(
    consent_id: ConsentId, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> AssistStarted:
    return consent_assisted.assist(session, runtime, principal, consent_id)


@borrower_router.post(
    "/v1/consents/{consent_id}/assist/confirm",
    summary="The agent submits the borrower's one-time code.",
    responses=answers(AssistGranted | AssistAnswer, 401, 404, 409, 422),
)
def confirm(
    consent_id: ConsentId,
    body: Annotated[Code, Body()],
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> AssistGranted | AssistAnswer:
    return consent_assisted.confirm_assisted(session, runtime, principal, consent_id, body.code)


# -- operators ---------------------------------------------------------------------------


@operator_router.get(
    "/v1/admin/access-denials",
    summary="Hourly counts of refused requests that named no consent or borrower.",
    responses=answers(list[DenialCount], 401, 404, 422),
)
def access_denials(
    session: ReadSessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    response: Response,
    hours: Annotated[int, Query(ge=1, le=24 * 366)] = 24,
) -> list[DenialCount]:
    response.headers.update(NO_STORE)
    return denial_counts.denial_counts(session, runtime, principal, hours=hours)
