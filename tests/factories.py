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
