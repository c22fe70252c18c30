"""HTTP API of reputation scores (docs/reputation.md "Score bundles"): ``GET /v1/scores``
(``?did=&ctx=``) serves a DID's score bundle in a context — the record with its factors as
commitments, or, to the subject (a ``Subject-Proof`` header: a ``score-request+jwt``
signed by the DID's key, at most 60 seconds old, for this platform), with their values and
salts.  A record with no bundle yet answers 202 Accepted with ``Retry-After`` (the bundle
is assembled off the request path, by the jobs step ``bundles_step``).  Composed here: the
proof check and the bundle from reputation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from credit_commons.core.encoding import canonical_json
from credit_commons.gateway.deps import RuntimeDep, SessionDep, platform_audience
from credit_commons.gateway.openapi import JwkSet, answers
from credit_commons.reputation import CTX_PATTERN, scores_service
from credit_commons.reputation.scores_bundle import verify_subject_proof

__all__ = ["router"]

router = APIRouter(prefix="/v1/scores", tags=["reputation scores"])


class ScoreBundle(BaseModel):
    """A score bundle (``credit-commons-score-bundle/v1``), served as RFC 8785 JSON; what
    ``commons score verify`` checks offline (docs/reputation.md "Score bundles")."""

    model_config = ConfigDict(populate_by_name=True)

    format: str = Field(description='"credit-commons-score-bundle/v1"')
    record: dict[str, Any] = Field(
        description="The score record; its factors as SHA-256 commitments unless the caller "
        "proved to be the subject"
    )
    record_hash: str = Field(alias="recordHash", description="SHA-256 of the record's JCS")
    as_of: str = Field(alias="asOf")
    rule_set: dict[str, str] = Field(alias="ruleSet", description="token (JWS) and hash")
    rules_jwks: dict[str, Any] = Field(alias="rulesJwks")
    checkpoint: str = Field(description="The signed checkpoint note the score was computed at")
    log_key: str = Field(alias="logKey")
    events: list[dict[str, Any]] = Field(
        description="cid, blob (base64url), leafIndex, entry, inclusionProof, event"
    )
    members: list[dict[str, Any]]
    factor_salts: dict[str, str] | None = Field(None, alias="factorSalts")
    statement: str = Field(
        description="The platform's score statement (compact JWS, typ reputation-score+jwt): "
        "the record's hash, the checkpoint, the rule set and exactly the inputs used"
    )
    scores_jwks: dict[str, Any] = Field(alias="scoresJwks")


BUNDLE_RETRY_AFTER = 2
"""Seconds a client waits before fetching again a bundle being prepared."""


class BundlePending(BaseModel):
    """The answer (202 Accepted, with ``Retry-After``) while a record's bundle is being
    prepared off the request path."""

    model_config = ConfigDict(populate_by_name=True)
    status: str = Field(description='"pending"')
    detail: str
    retry_after: int = Field(alias="retryAfter", description="Seconds to wait, as Retry-After")


@router.get("/jwks", summary="Keys that sign score statements.", responses=answers(JwkSet))
def score_statement_keys(session: SessionDep, runtime: RuntimeDep) -> JwkSet:
    # A write session: the key is made on first use, as every platform key is.
    return JwkSet(keys=[v.jwk() for v in scores_service.score_statement_keys(session, runtime)])


@router.get(
    "",
    summary="A DID's score bundle in a context: the record, the signed rule set and "
    "checkpoint, and every input with its inclusion proof (offline-verifiable).",
    response_model=ScoreBundle,
    responses={
        **answers(ScoreBundle, 401, 404, 409, 422),
        202: {
            "model": BundlePending,
            "description": "The bundle is being prepared: fetch again after Retry-After seconds.",
        },
    },
)
def get_score(
    session: SessionDep,
    runtime: RuntimeDep,
    did: Annotated[
        str, Query(min_length=9, max_length=128, pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")
    ],
    ctx: Annotated[str, Query(max_length=98, pattern=CTX_PATTERN)],
    subject_proof: Annotated[str | None, Header(max_length=4096)] = None,
) -> Response:
    # The proof is checked before the score is looked up: a refusal says nothing about
    # whether the DID has a score.
    if subject_proof is not None:
        verify_subject_proof(
            subject_proof,
            did=did,
            ctx=ctx,
            audience=platform_audience(runtime),
            now=runtime.clock.now(),
        )
    # A write session: the first fetch of a record requests its bundle, which a jobs step
    # assembles off the request path.
    body = scores_service.score_bundle(
        session, runtime, did=did, ctx=ctx, subject=subject_proof is not None
    )
    if body is None:
        pending = BundlePending(
            status="pending",
            detail="The score bundle is being prepared; retry after the given seconds.",
            retry_after=BUNDLE_RETRY_AFTER,
        )
        return Response(
            canonical_json(pending.model_dump(by_alias=True)),
            status_code=202,
            media_type="application/json",
            headers={"Retry-After": str(BUNDLE_RETRY_AFTER), "Cache-Control": "no-store"},
        )
    # The kept bytes as they are: no model round trip on the cached path.
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
