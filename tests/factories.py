"""Request bodies the HTTP tests share."""

from __future__ import annotations

import secrets

from credit_commons.issuer.catalogue import commit_score


def readiness_claims(
    identity_token: str,
    score: int = 702,
    *,
    opening_score: int | None = None,
    disclose_score: bool = True,
    **overrides: object,
) -> dict[str, object]:
    """CreditReadinessCredential claims for ``identity_token`` with a fresh salt.

    The commitment is to ``score``; the opening (a disclosable claim) holds ``opening_score``
    (default: ``score``) or is left out when ``disclose_score`` is false.  ``overrides``
    replace top-level claims (``credit_tier``, ``income_bracket``, ...).
    """
    salt = secrets.token_urlsafe(16)
    claims: dict[str, object] = {
        "enterprise": {"identity_token": identity_token},
        "credit_tier": "B",
        "income_bracket": "5L-25L",
        "debt_ratio_bracket": "0.2-0.4",
        "score_commitment": commit_score(score, salt),
        "verification_sources": ["udyam"],
    }
    if disclose_score:
        opened = score if opening_score is None else opening_score
        claims["score_opening"] = {"score": opened, "salt": salt}
    return {**claims, **overrides}


def kyc_claims(
    identity_token: str, birth_date: str = "1958-03-14", **overrides: object
) -> dict[str, object]:
    """KycCredential claims for ``identity_token``: document-verified, born ``birth_date``;
    ``overrides`` replace top-level claims."""
    claims: dict[str, object] = {
        "person": {"identity_token": identity_token},
        "verification_level": "document_verified",
        "birth_date": birth_date,
        "verified_on": "2026-11-02",
    }
    return {**claims, **overrides}


def shg_claims(
    identity_token: str, shg_id: str = "shg-42", **overrides: object
) -> dict[str, object]:
    """ShgMembershipCredential claims for ``identity_token``: a member of ``shg_id`` since
    2021; ``overrides`` replace top-level claims."""
    claims: dict[str, object] = {
        "person": {"identity_token": identity_token},
        "shg_id": shg_id,
        "role": "member",
        "since": "2021-06-01",
    }
    return {**claims, **overrides}


def community_tier_claims(score: int = 31_250_000, **overrides: object) -> dict[str, object]:
    """CommunityTierCredential claims: silver in shg:savings under the dev rule set's id,
    ``score`` in micro-units (the issuer adds the salt and the commitment)."""
    claims: dict[str, object] = {
        "tier": "silver",
        "ctx": "shg:savings",
        "rule_set": {"id": "shg-rules", "version": 1, "hash": "a4" * 32},
        "as_of": "2026-12-07",
        "score_opening": {"score": score},
    }
    return {**claims, **overrides}
