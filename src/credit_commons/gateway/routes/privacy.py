"""HTTP API of data-subject requests, under ``/v1/identities/{token}/requests``, and, for an
authenticated caller, the direct export ``POST /v1/identities/{token}/export`` and erasure
``DELETE /v1/identities/{token}``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from credit_commons.gateway.deps import NO_STORE, PrincipalDep, RuntimeDep, SessionDep
from credit_commons.gateway.openapi import answers
from credit_commons.identity import auth as identity_auth
from credit_commons.identity.schemas import IDENTITY_TOKEN_PATTERN
from credit_commons.privacy import dsr
from credit_commons.privacy.erasure import erase_subject
from credit_commons.privacy.export import export_subject
from credit_commons.privacy.pdf import render_export_pdf
from credit_commons.privacy.schemas import DsrConfirmed, DsrOpened, ErasureReceipt, SubjectExport

__all__ = ["export_router", "router"]

router = APIRouter(prefix="/v1/identities/{token}/requests", tags=["data-subject requests"])
TokenPath = Annotated[str, Path(pattern=IDENTITY_TOKEN_PATTERN)]
RequestPath = Annotated[str, Path(pattern=r"^dsr_[0-9A-Z]{26}$")]


class OpenRequest(BaseModel):
    """What the subject asks for."""

    model_config = ConfigDict(extra="forbid")
    kind: dsr.DsrKind


class Confirm(BaseModel):
    """A DID signature over the request's signing message (base64url), unless the caller
    authenticates as the identity."""

    model_config = ConfigDict(extra="forbid")
    signature: (
        Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] | None
    ) = None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Open an export or erasure request.",
    responses=answers(DsrOpened, 422, status=201),
)
def open_request(
    token: TokenPath, body: OpenRequest, session: SessionDep, runtime: RuntimeDep
) -> DsrOpened:
    return dsr.open_request(session, runtime, token, body.kind)


@router.post(
    "/{request_id}/confirm",
    summary="Confirm: as the owner, or with a DID signature.",
    responses=answers(DsrConfirmed, 401, 403, 422),
)
def confirm(
    token: TokenPath,
    request_id: RequestPath,
    body: Confirm,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> DsrConfirmed:
    principal = None
    if authorization:
        principal = identity_auth.authenticate(session, runtime, authorization)
    response.headers.update(NO_STORE)
    return dsr.confirm_request(
        session, runtime, token, request_id, principal=principal, signature=body.signature
    )


@router.post(
    "/{request_id}/fulfil",
    summary="Run a confirmed request with its token (once).",
    responses=answers(
        SubjectExport | ErasureReceipt,
        403,
        422,
        description="The export, or the erasure receipt, as the request's kind says.",
    ),
)
def fulfil(
    token: TokenPath,
    request_id: RequestPath,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    x_dsr_token: Annotated[str | None, Header()] = None,
) -> SubjectExport | ErasureReceipt:
    del request_id  # the token names the request; the path keeps the URL readable
    response.headers.update(NO_STORE)
    return dsr.fulfil_request(session, runtime, token, x_dsr_token)


export_router = APIRouter(prefix="/v1/identities", tags=["identities"])


@export_router.post(
    "/{token}/export",
    summary="Everything held on the subject, as JSON or (format=pdf) as a PDF.",
    responses=answers(
        SubjectExport,
        401,
        404,
        422,
        also={"application/pdf": {"type": "string", "format": "binary"}},
    ),
    response_model=SubjectExport,  # the JSON answer's shape; both media return as they are
)
def export(
    token: TokenPath,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    format: Annotated[Literal["json", "pdf"], Query()] = "json",
) -> Response:
    # A Response of either media type (the PDF is rendered from the export's JSON), so the
    # JSON is the model's own dump rather than the return annotation's serialisation.
    data = export_subject(session, runtime, principal, token).model_dump(mode="json")
    if format == "pdf":
        pdf = render_export_pdf(data, generated_at=runtime.clock.now())
        return Response(pdf, media_type="application/pdf", headers=NO_STORE)
    return JSONResponse(data, headers=NO_STORE)


@export_router.delete(
    "/{token}",
    summary="Erase the subject (crypto-shredding); the receipt.",
    responses=answers(ErasureReceipt, 401, 404, 409, 422),
)
def erase(
    token: TokenPath, session: SessionDep, runtime: RuntimeDep, principal: PrincipalDep
) -> ErasureReceipt:
    return erase_subject(session, runtime, principal, token)
