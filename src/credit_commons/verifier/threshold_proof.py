"""Seed 004's threshold proof, the relying party's side: "the holder's community score in
``ctx`` is at least θ", answered out of band by the holder's wallet
(``POST /v1/threshold-proof`` of ``commons wallet serve``, docs/wallet.md) and checked here.

The answer carries three things: ``proof`` (a ``community_score_at_least`` Groth16 proof,
``{"statement", "proof", "public_signals"}``), ``presentation`` (an SD-JWT+KB of the
holder's ``CommunityTierCredential`` disclosing none of its Disclosures: what the issuer
signed in the clear — ``tier``, ``ctx``, ``rule_set``, ``as_of``, ``zk_commitments`` — with a
Key Binding JWT for the relying party's nonce and audience) and ``checkpoint`` (the signed
log checkpoint the score was computed at).  :func:`verify_threshold_proof` checks:

1. the presentation: the issuer's signature under a key the caller's resolver trusts, its
   validity period, and key binding to ``audience`` and ``nonce`` (RFC 9901 §7.1, §7.3);
2. that it is a ``CommunityTierCredential`` of context ``ctx``;
3. its status: the credential must name a status list (``status.status_list``), and the
   caller's ``status`` lookup (``StatusListFetcher(...).status``: the list fetched,
   signature-checked and cached, as the verifier's pipeline does for foreign lists) must
   answer ``VALID`` at its index — a revoked or suspended credential proves nothing
   (``raise_for_status``);
4. the proof, by the verifier's step 8 (``zk_step.check_predicates``): the statement, the
   binding to ``nonce``, ``audience`` and :func:`threshold_request_hash` of this request (so
   ``ctx`` and ``threshold`` are bound too), the threshold against the relying party's own,
   the commitment against the one the issuer signed in the presented credential, then the
   pairing check.

A replay of one nonce is the relying party's bookkeeping (as for every nonce it issues).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from credit_commons.core.encoding import JsonObject, canonical_json, sha256_hex
from credit_commons.formats.status_list import TokenStatus
from credit_commons.verifier.reasons import Reason, VerificationDenied
from credit_commons.verifier.sd_jwt_vc import disclosed_claims, raise_for_status, sd_jwt_vc_facts
from credit_commons.verifier.sd_jwt_verify import IssuerKeyResolver, verify
from credit_commons.verifier.zk_step import ZkCheck, ZkPredicate, check_predicates
from credit_commons.zk import COMMUNITY_TIER_VCT, LoadedStatement

__all__ = [
    "ANY_AUDIENCE",
    "THRESHOLD_STATEMENT",
    "threshold_request_hash",
    "verify_threshold_proof",
]

THRESHOLD_STATEMENT: Final = "community_score_at_least"
"""The registry statement a threshold proof is a proof of."""

ANY_AUDIENCE: Final = "urn:credit-commons:any-audience"
"""The audience a threshold proof is bound to when its request names none: any relying
party that knows the nonce accepts it."""

_QUERY: Final = "community_tier"


def threshold_request_hash(
    *, ctx: str, threshold: int, nonce: str, audience: str, statement: str = THRESHOLD_STATEMENT
) -> str:
    """The request hash a threshold proof's binding covers: SHA-256 (hex) of the RFC 8785
    JSON ``{"type": "credit-commons-threshold-proof/v1", "statement", "ctx", "threshold",
    "nonce", "audience"}``."""
    request = {
        "type": "credit-commons-threshold-proof/v1",
        "statement": statement,
        "ctx": ctx,
        "threshold": threshold,
        "nonce": nonce,
        "audience": audience,
    }
    return sha256_hex(canonical_json(request))


def _deny(reason: Reason, detail: str) -> VerificationDenied:
    return VerificationDenied(reason, detail)


def verify_threshold_proof(
    answer: Mapping[str, Any],
    *,
    ctx: str,
    threshold: int,
    nonce: str,
    audience: str,
    statement: LoadedStatement,
    issuer_key_resolver: IssuerKeyResolver,
    status: Callable[[str, int], TokenStatus],
    now: int,
    today: int,
) -> JsonObject:
    """Check a wallet's threshold-proof ``answer`` against the relying party's own request
    (``ctx``, ``threshold``, ``nonce``, ``audience``) — the steps of the module; ``statement``
    is the registry's ``community_score_at_least`` as the relying party loaded it,
    ``status(uri, index)`` the credential's status in the list at ``uri`` (e.g.
    ``StatusListFetcher.status``), ``now`` Unix seconds, ``today`` the day number
    (``zk.day_number``).  Returns the presented credential's claims (tier, context, rule
    set, day; never the score).

    Raises :class:`VerificationDenied` with the failing check's reason (``status_unchecked``
    for a credential that names no status list), ``CredentialRevoked`` and
    ``CredentialSuspended``, what ``status`` raises (``StatusListRejected``, the fetcher's
    errors), and the SD-JWT verifier's errors (``SdJwtInvalid`` subclasses, what the
    resolver raises).
    """
    presentation = answer.get("presentation")
    if not isinstance(presentation, str):
        raise _deny(Reason.RESPONSE_INVALID, "the answer has no presentation")
    # 1. The presentation, bound to this relying party's nonce and audience.
    verified = verify(
        presentation,
        issuer_key_resolver=issuer_key_resolver,
        require_key_binding=True,
        audience=audience,
        nonce=nonce,
        now=now,
    )
    claims = disclosed_claims(verified.payload)
    # 2. A CommunityTierCredential of this context.
    vct = claims.get("vct")
    if vct != COMMUNITY_TIER_VCT or claims.get("ctx") != ctx:
        raise _deny(Reason.TYPE_NOT_ACCEPTED, "not a community tier credential of this context")
    # 3. Its status: revoked or suspended, it proves nothing.
    reference = sd_jwt_vc_facts(verified).status
    if reference is None:
        raise _deny(Reason.STATUS_UNCHECKED, "the credential names no status list")
    raise_for_status(status(reference.uri, reference.index))
    # 4. The proof, by step 8, bound to this request.
    check = ZkCheck(
        predicates=(ZkPredicate(_QUERY, THRESHOLD_STATEMENT, _QUERY, {"threshold": threshold}),),
        proofs={_QUERY: answer.get("proof")},
        nonce=nonce,
        audience=audience,
        request_hash=threshold_request_hash(
            ctx=ctx, threshold=threshold, nonce=nonce, audience=audience
        ),
        today=today,
        load=lambda _: statement,
        used=lambda _: False,
    )
    check_predicates(check, _QUERY, COMMUNITY_TIER_VCT, claims)
    return claims
