"""``GET /v1/reputation/capabilities?did=&ctx=`` (docs/reputation.md "Capability
credentials"): the holder's pickup of the capability credentials issued to its DID in a
context.  Only the subject gets them: the ``Subject-Proof`` header is the score request's
(a ``score-request+jwt`` signed by the DID's key, at most 60 seconds old, for this
platform), checked before anything is looked up.  Composed here: the queue is reputation's,
the credentials' texts the issuer's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field

from credit_commons.gateway.deps import RuntimeDep, SessionDep, platform_audience
from credit_commons.gateway.openapi import answers
from credit_commons.issuer import issued_text
from credit_commons.reputation import CTX_PATTERN, capability
from credit_commons.reputation.scores_bundle import verify_subject_proof

__all__ = ["router"]

router = APIRouter(prefix="/v1/reputation/capabilities", tags=["reputation scores"])


class IssuedCapability(BaseModel):
    """One capability credential: its tier and the SD-JWT VC (bound to the DID's key)."""

    tier: str
    ctx: str
    credential: str = Field(description="The dc+sd-jwt credential, with every Disclosure")


class Capabilities(BaseModel):
    """The capability credentials issued to a DID in a context, oldest first."""

    credentials: list[IssuedCapability]


@router.get(
    "",
    summary="The capability credentials issued to a DID in a context (the subject only).",
    response_model=Capabilities,
    responses=answers(Capabilities, 401, 422),
)
def get_capabilities(
    session: SessionDep,
    runtime: RuntimeDep,
    did: Annotated[
        str, Query(min_length=9, max_length=128, pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")
    ],
    ctx: Annotated[str, Query(max_length=98, pattern=CTX_PATTERN)],
    subject_proof: Annotated[str, Header(max_length=4096)],
) -> Capabilities:
    verify_subject_proof(
        subject_proof,
        did=did,
        ctx=ctx,
        audience=platform_audience(runtime),
        now=runtime.clock.now(),
    )
    found: list[IssuedCapability] = []
    for tier, reference in capability.issued_capabilities(session, did, ctx):
        text = issued_text(session, runtime, reference)
        if text is not None:  # an erased subject's credential is gone with it
            found.append(IssuedCapability(tier=tier, ctx=ctx, credential=text))
    return Capabilities(credentials=found)
