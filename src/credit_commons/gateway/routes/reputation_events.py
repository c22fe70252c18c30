"""HTTP API of reputation events and members (docs/reputation.md): ``POST /v1/events``,
``GET /v1/blobs/{cid}``, ``POST /v1/reputation/members`` and
``POST /v1/reputation/members/tombstone``.

Events are signed by their sender's did:key; no bearer token is involved (the signature, the
membership and the per-epoch budget are the gate; the route group's rate limit per address
bounds the rest).  A membership is composed here, above both domains: the verifier checks
the presented SD-JWT VC (issuer signature, trust, status, key binding for this platform and
the DID), this module checks that its ``cnf`` key is the DID's own key, and the reputation
service records it.  A tombstone is the DID's own request, signed by its key (a
``reputation-tombstone+jwt``), to be left out of scoring for good.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from credit_commons import verifier
from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, canonical_json, sha256_hex
from credit_commons.core.errors import (
    CommonsError,
    ForbiddenError,
    IntegrityError,
    NotFoundError,
    ValidationError,
)
from credit_commons.formats.jws import decode_json_object
from credit_commons.formats.sd_jwt_format import split
from credit_commons.gateway.deps import ReadSessionDep, RuntimeDep, SessionDep, platform_audience
from credit_commons.gateway.openapi import answers, media
from credit_commons.gateway.service_deps import require_service
from credit_commons.keys import PublicKey, ServiceCaller, public_key_from_jwk
from credit_commons.reputation import (
    EventAccepted,
    MemberCredentialRefused,
    MemberExcluded,
    MemberRegistered,
    RuleSet,
    RulesUnavailable,
    active_rule_set,
    ed25519_did,
)
from credit_commons.reputation import service as reputation_service
from credit_commons.runtime import Runtime

__all__ = ["router"]

router = APIRouter(tags=["reputation"])

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A signed vouch or report (seed 004), at most 2 KiB; docs/reputation.md.",
    "required": ["type", "from", "to", "ctx", "epoch", "nonce", "issuedAt", "sig"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["vouch", "report"]},
        "from": {"type": "string", "description": "the sender's Ed25519 did:key"},
        "to": {"type": "string", "description": "the subject's Ed25519 did:key"},
        "ctx": {"type": "string", "pattern": r"^[a-z][a-z0-9_-]{0,31}(:[a-z0-9_-]{1,32}){0,2}$"},
        "epoch": {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"},
        "payloadCID": {"type": "string", "description": "a raw sha2-256 CIDv1"},
        "nonce": {"type": "string", "description": "base64url of 12 random bytes"},
        "issuedAt": {"type": "string", "description": "YYYY-MM-DDThh:mm:ssZ"},
        "sig": {"type": "string", "description": "inline Ed25519 or detached JWS"},
    },
}


async def _raw_body(request: Request) -> bytes:
    # The exact bytes: an event is parsed strictly (I-JSON, 2 KiB) by the reputation domain.
    return await request.body()


def _rules(session: Any, runtime: Runtime) -> RuleSet:
    try:
        return active_rule_set(session, runtime, runtime.clock.now()).rule_set
    except NotFoundError as e:
        raise RulesUnavailable("no reputation rule set is in effect yet") from e


@router.post(
    "/v1/events",
    status_code=201,
    summary="Submit a signed vouch or report; its CID and the log's pending receipt.",
    responses=answers(EventAccepted, 400, 403, 409, 413, 422, status=201),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _EVENT_SCHEMA}},
        }
    },
)
async def submit_event(
    body: Annotated[bytes, Depends(_raw_body)], runtime: RuntimeDep
) -> EventAccepted:
    def submit() -> EventAccepted:
        # One hop to the thread pool (as the verifier's decision route): the unit of work,
        # committed before the answer, and the judgement in it.
        with transaction(runtime.sessions) as session:
            return reputation_service.submit_event(session, runtime, body, _rules(session, runtime))

    return await run_in_threadpool(submit)


@router.get(
    "/v1/blobs/{cid}",
    summary="The exact bytes a CID addresses (an accepted event's RFC 8785 JSON).",
    response_class=Response,
    responses=media({"application/json": _EVENT_SCHEMA}, 404),
)
def get_blob(cid: str, session: ReadSessionDep) -> Response:
    body = reputation_service.blob(session, cid)
    # Content-addressed: the bytes under a CID never change.
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{cid}"'}
    return Response(body, media_type="application/json", headers=headers)


class MemberDocument(BaseModel):
    """A membership as its ``reputation.member`` spine event recorded it, for a follower
    that scores (docs/federation.md, "Scoring on a node"): ``did`` (its SHA-256 is the
    event's ``did_sha256``), ``kyc``, ``since`` (the event's day) and ``credentialSha256``
    as the event states them; ``issuer`` and ``vct`` as a score bundle states them."""

    model_config = ConfigDict(populate_by_name=True)
    event: str
    did: str
    kyc: bool
    since: str
    credential_sha256: str = Field(alias="credentialSha256")
    issuer: str
    vct: str


@router.get(
    "/v1/reputation/members/{event_id}",
    summary="A membership by the spine event that recorded it, for a registered full node "
    "(scope members:read); 404 once its DID is excluded.",
    response_model=MemberDocument,
    responses=answers(MemberDocument, 401, 403, 404),
)
def get_member(
    event_id: Annotated[str, Path(max_length=64)],
    session: ReadSessionDep,
    _caller: Annotated[ServiceCaller, Depends(require_service("members:read"))],
) -> Response:
    document = reputation_service.member_document(session, event_id)
    # A plain DID, for one caller, until the DID is excluded: never stored by a cache.
    headers = {"Cache-Control": "private, no-store"}
    return Response(canonical_json(document), media_type="application/json", headers=headers)


class MemberRequest(BaseModel):
    """A membership: the did:key to register and an SD-JWT VC presentation bound to its key,
    whose Key Binding JWT has ``aud`` = this platform's public URL and ``nonce`` = the DID."""

    model_config = ConfigDict(extra="forbid")

    did: str = Field(max_length=128)
    presentation: str = Field(max_length=60_000)


def _issuer_signed(presentation: str) -> tuple[str, JsonObject, str | None]:
    # The Issuer-signed JWT of a presentation the verifier accepted, its payload, and its
    # protected header's x5c chain as JSON when it has one (the verifier then certified the
    # issuer through an X.509 anchor: the status step verifies the issuer's list under it).
    parts = split(presentation, "compact")
    first = parts.signatures[0]
    header = decode_json_object(first.protected, "header")
    x5c = header.get("x5c")
    chain = x5c if isinstance(x5c, list) and all(isinstance(c, str) for c in x5c) else None
    return (
        f"{first.protected}.{parts.payload}.{first.signature}",
        decode_json_object(parts.payload, "payload"),
        None if chain is None else json.dumps(chain),
    )


def _bound_to(payload: JsonObject, key: PublicKey) -> bool:
    # The credential's holder key (cnf.jwk, RFC 7800) is the DID's own key.
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict):
        return False
    try:
        holder = public_key_from_jwk(jwk)
    except CommonsError:
        return False
    return holder.key_type is key.key_type and holder.raw() == key.raw()


def _status_ref(payload: JsonObject) -> str | None:
    status = payload.get("status")
    reference = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(reference, dict):
        return None
    return f"{reference.get('uri')}#{reference.get('idx')}"


@router.post(
    "/v1/reputation/members",
    status_code=201,
    summary="Register a DID's membership with a key-bound credential (KYC or attestation).",
    responses=answers(MemberRegistered, 403, 409, 422, 502, status=201),
)
def register_member(
    body: MemberRequest, session: SessionDep, runtime: RuntimeDep
) -> MemberRegistered:
    did_key = ed25519_did(body.did, "did")
    rules = _rules(session, runtime)
    try:
        verified = verifier.verify_presentation(
            session,
            runtime,
            body.presentation,
            audience=platform_audience(runtime),
            nonce=body.did,
        )
        jwt, payload, x5c = _issuer_signed(body.presentation)
    except (IntegrityError, ValidationError, ForbiddenError, NotFoundError) as e:
        # Non-oracular toward the presenter; the verifier's reason stays in its errors.
        raise MemberCredentialRefused("the credential was not accepted") from e
    except CommonsError:
        raise  # a dependency (a foreign issuer's keys or status list) is unavailable
    if not _bound_to(payload, did_key):
        raise MemberCredentialRefused("the credential is not bound to this DID's key")
    issuer = payload.get("iss")
    if not isinstance(issuer, str):
        raise MemberCredentialRefused("the credential was not accepted")
    return reputation_service.register_member(
        session,
        runtime,
        did=body.did,
        vct=verified.vct,
        issuer=issuer,
        credential_sha256=sha256_hex(jwt.encode("ascii")),
        status_ref=_status_ref(payload),
        rules=rules,
        x5c=x5c,
    )


class TombstoneRequest(BaseModel):
    """A DID's request to be left out of scoring for good: the did:key and a compact JWS
    (``typ`` ``reputation-tombstone+jwt``, EdDSA) signed by its key, ``sub`` the DID,
    ``aud`` this platform's public URL, ``iat`` at most 60 seconds old."""

    model_config = ConfigDict(extra="forbid")

    did: str = Field(max_length=128)
    proof: str = Field(max_length=4096)


@router.post(
    "/v1/reputation/members/tombstone",
    status_code=201,
    summary="Leave scoring for good: a tombstone signed by the DID's key.",
    responses=answers(MemberExcluded, 401, 422, status=201),
)
def tombstone(body: TombstoneRequest, session: SessionDep, runtime: RuntimeDep) -> MemberExcluded:
    ed25519_did(body.did, "did")
    return reputation_service.leave(
        session, runtime, body.did, body.proof, platform_audience(runtime)
    )
