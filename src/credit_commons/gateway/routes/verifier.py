"""HTTP endpoints of the OpenID4VP verifier (docs/verifier.md): a verifier (a lender client)
makes a request and reads its status and decision; a wallet fetches the signed request
object and posts its response.

The response endpoint answers the wallet ``200`` with a JSON object (OpenID4VP 1.0 §8.2) for
an accepted presentation — with the redirect and its response code when the verifier gave a
``redirect_uri`` — and for a wallet's error response it processed (§8.5: the request is
over); ``400 {"error": "not_allowed"}`` for every denial — the same body whatever step
refused and whatever failed inside the platform (seed 002 §5: non-oracular, fail closed) —
and ``400 {"error": "invalid_request"}`` for a body that is not a form at all (§8.5, RFC
6749 §5.2: the request itself is malformed, before anything is known of a credential).
"""

from __future__ import annotations

import logging
import re
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from credit_commons.core.db import transaction
from credit_commons.core.errors import ValidationError
from credit_commons.formats.oid4vp import MAX_RESPONSE_CHARS
from credit_commons.gateway.deps import NO_STORE, ReadSessionDep, RuntimeDep, SessionDep
from credit_commons.gateway.lender_deps import LenderDep, authenticate_request, route_operation
from credit_commons.gateway.openapi import answers, media, oauth_errors
from credit_commons.runtime import Runtime
from credit_commons.verifier import (
    PRESENTER_DENIAL,
    AcceptedResponse,
    PresentationRequest,
    RequestCreated,
    TransactionStatus,
    VerifierDecision,
)
from credit_commons.verifier import service as verifier_service

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["verifier"])
TransactionPath = Annotated[str, Path(pattern=r"^vpt_[A-Za-z0-9]{1,36}$")]
_JAR = "application/oauth-authz-req+jwt"
# §5.10.1: the wallet_nonce goes into the signed request object; a bounded, printable one.
_WALLET_NONCE = re.compile(r"[\x21-\x7e]{1,256}")
_MAX_FORM = MAX_RESPONSE_CHARS + 4096


class ResponseCode(BaseModel):
    """The response code the wallet was redirected with."""

    model_config = ConfigDict(extra="forbid")
    response_code: Annotated[str, Field(min_length=16, max_length=128)]


@router.post(
    "/v1/verifier/requests",
    status_code=201,
    summary="Make an OpenID4VP presentation request (verifiers).",
    responses=answers(RequestCreated, 401, 403, 422, status=201),
)
async def create_request(
    body: PresentationRequest,
    request: Request,
    runtime: RuntimeDep,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> RequestCreated:
    def make() -> RequestCreated:
        # One hop to the thread pool for the whole call: the lender's authentication in a
        # read unit of work, then the transaction written in a unit of work committed
        # before the answer (what LenderDep and SessionDep do, in five hops).
        lender = authenticate_request(request, authorization, route_operation(request))
        with transaction(runtime.sessions) as session:
            return verifier_service.create_request(session, runtime, lender.client_id, body)

    response.headers.update(NO_STORE)
    return await run_in_threadpool(make)


@router.get(
    "/v1/verifier/requests/{transaction_id}",
    summary="The status of a presentation request, with its decision and reason (verifiers).",
    responses=answers(TransactionStatus, 401, 403, 404, 422),
)
def request_status(
    transaction_id: TransactionPath,
    lender: LenderDep,
    session: ReadSessionDep,
    runtime: RuntimeDep,
) -> TransactionStatus:
    return verifier_service.status(session, runtime, lender.client_id, transaction_id)


@router.post(
    "/v1/verifier/requests/{transaction_id}/decision",
    summary="The accepted decision with the disclosed claims, once, for the response code.",
    responses=answers(VerifierDecision, 401, 403, 404, 422),
)
async def request_decision(
    transaction_id: TransactionPath,
    body: ResponseCode,
    request: Request,
    runtime: RuntimeDep,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> VerifierDecision:
    def read() -> VerifierDecision:
        # One hop to the thread pool, as create_request: authentication, then the claims
        # read once and deleted in a unit of work committed before the answer.
        lender = authenticate_request(request, authorization, route_operation(request))
        with transaction(runtime.sessions) as session:
            return verifier_service.decision(
                session, runtime, lender.client_id, transaction_id, body.response_code
            )

    response.headers.update(NO_STORE)
    return await run_in_threadpool(read)


_REQUEST_OBJECT = media({_JAR: {"type": "string"}}, 404, 422)


@router.get(
    "/v1/verifier/requests/{transaction_id}/request.jwt",
    summary="The signed request object (request_uri, OpenID4VP 1.0 §5.10).",
    response_class=Response,
    responses=_REQUEST_OBJECT,
)
def get_request_object(
    transaction_id: TransactionPath, session: SessionDep, runtime: RuntimeDep
) -> Response:
    token = verifier_service.request_object(session, runtime, transaction_id)
    return Response(token, media_type=_JAR, headers=NO_STORE)


@router.post(
    "/v1/verifier/requests/{transaction_id}/request.jwt",
    summary="The signed request object, for request_uri_method=post (OpenID4VP 1.0 §5.10).",
    response_class=Response,
    responses=_REQUEST_OBJECT,
)
async def post_request_object(transaction_id: TransactionPath, request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    form = await _form(request)
    if form is None:
        raise ValidationError("the body must be form-encoded, each parameter once")
    wallet_nonce = form.get("wallet_nonce")
    if wallet_nonce is not None and not _WALLET_NONCE.fullmatch(wallet_nonce):
        raise ValidationError("wallet_nonce must be 1 to 256 printable ASCII characters")

    def sign() -> str:
        with transaction(rt.sessions) as session:
            return verifier_service.request_object(
                session, rt, transaction_id, wallet_nonce=wallet_nonce
            )

    token = await run_in_threadpool(sign)
    return Response(token, media_type=_JAR, headers=NO_STORE)


async def _form(request: Request) -> dict[str, str] | None:
    # A form-encoded body, each parameter once, or None.
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    raw = await request.body()
    if len(raw) > _MAX_FORM:
        return None
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return None
    if any(len(values) != 1 for values in parsed.values()):
        return None
    return {name: values[0] for name, values in parsed.items()}


@router.post(
    "/v1/verifier/responses/{transaction_id}",
    summary="The response endpoint (response_uri, OpenID4VP 1.0 §8.2): vp_token and state, "
    "or the encrypted response.",
    response_model=AcceptedResponse,
    # Every denial is 400 {"error": "not_allowed"}; a body that is no form 400
    # {"error": "invalid_request"}: an OAuth-style error body (RFC 6749 §5.2), as §8.5 uses.
    responses={**answers(AcceptedResponse, 422), **oauth_errors(400)},
)
async def post_response(transaction_id: TransactionPath, request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    form = await _form(request)
    if form is None:
        return JSONResponse({"error": "invalid_request"}, status_code=400, headers=NO_STORE)

    def decide() -> verifier_service.Verdict:
        try:  # its own units of work: a read, then a short write (verifier/responses.py)
            return verifier_service.accept_response(rt, transaction_id, form)
        except verifier_service.DecisionOutcomeUnknown as e:
            # The decision may have been recorded: the operator is told which, the wallet
            # learns nothing (the uniform denial, as for any failure).
            log.warning(
                "verification.outcome_unknown transaction=%s event=%s",
                e.transaction_id,
                e.event_id,
            )
            return verifier_service.Verdict(False, None)
        except Exception as e:
            # Fail closed: not even recording the decision may answer anything but a denial.
            log.warning("verification.unrecorded error=%s", type(e).__name__)
            return verifier_service.Verdict(False, None)

    verdict = await run_in_threadpool(decide)
    if verdict.answer is None:
        return JSONResponse({"error": PRESENTER_DENIAL}, status_code=400, headers=NO_STORE)
    return JSONResponse(verdict.answer.model_dump(mode="json", exclude_none=True), headers=NO_STORE)
