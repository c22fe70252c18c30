"""Signed predicate attestations about an identity (seed 003): booleans, never values.

The claims of a :class:`PredicateRequest` are evaluated over the identity's sealed
attributes, and the results are signed by the platform key ``attestations`` (Ed25519) bound
to the caller's nonce and audience.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from credit_commons.events import EventDetails, record_event
from credit_commons.identity.auth import Principal, actor_of, subject_of
from credit_commons.identity.predicates import PredicateRequest, evaluate, sign_attestation
from credit_commons.identity.schemas import AttestationView, ClaimAnswer
from credit_commons.identity.service import open_attributes
from credit_commons.keys import KeyType, StoredSigner
from credit_commons.keys import service as key_service
from credit_commons.runtime import Runtime

__all__ = ["ATTESTATION_KEY", "AttestationIssued", "attest", "attestation_signer"]

ATTESTATION_KEY = "attestations"
_ATTESTATION_PLATFORM_KEY = key_service.PlatformKey(ATTESTATION_KEY, KeyType.ED25519, "attestation")


class AttestationIssued(EventDetails, event_type="identity.attested"):
    """A signed predicate attestation (booleans only) was issued about the subject."""

    claims: int


def attestation_signer(session: Session, rt: Runtime) -> StoredSigner:
    """The key-store key that signs predicate attestations (Ed25519, made on first use)."""
    return key_service.platform_signer(session, rt, _ATTESTATION_PLATFORM_KEY)


def attest(
    session: Session, rt: Runtime, principal: Principal, token: str, request: PredicateRequest
) -> AttestationView:
    """Evaluate ``request``'s claims over the sealed attributes and return a signed JWT of
    the boolean results bound to the caller's nonce and audience — never the values.

    Allowed for the identity, its owner, an administrator or a delegate with
    ``read:profile``; everyone else gets :class:`NotFoundError`.
    """
    now = rt.clock.now()
    attributes = open_attributes(session, rt, principal, token, now)
    results = evaluate(request, attributes.model_dump(exclude_none=True), today=now.date())
    signer = attestation_signer(session, rt)
    jwt = sign_attestation(
        results,
        subject=token,
        request=request,
        issuer=rt.settings.public_url,
        signer=signer,
        kid=signer.kid,
        now=now,
    )
    record_event(
        session,
        AttestationIssued(claims=len(results)),
        actor=actor_of(rt, principal),
        at=now,
        subject=subject_of(rt, token),
        object=rt.objects.digest("attestation", jwt[-43:]),
    )
    return AttestationView(
        attestation=jwt,
        results=[ClaimAnswer(claim=r.claim, satisfied=r.satisfied) for r in results],
        all_satisfied=all(r.satisfied for r in results),
    )
