"""Issue 19: the Credit Readiness Credential carries its holder's community tier.

The issuer and reputation are siblings in the layers (neither imports the other), so the
gateway composes them: :func:`with_community_tier` adds the ``community_tier`` claim to the
claims of a Credit Readiness Credential whose holder key is an Ed25519 key whose did:key
holds a capability credential still backed by its current score record — on
``POST /v1/credentials`` (and ``/batch``) and at the redemption of an OID4VCI offer, where
the holder key becomes known (``POST /credential``).  Claims that carry a tier already (the
issuer sent one) are left as they are.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError
from credit_commons.issuer import CREDIT_READINESS
from credit_commons.keys import KeyType, encode_did_key, public_key_from_jwk
from credit_commons.reputation import capability

__all__ = ["with_community_tier"]


def with_community_tier(
    session: Session, type_name: str, claims: JsonObject, holder_jwk: JsonObject
) -> JsonObject:
    """``claims`` with the holder's ``community_tier`` when it has one (see the module);
    ``claims`` unchanged otherwise (another type, a tier given, a key that is not Ed25519 or
    does not parse — issuance refuses that key with its own problem — or no tier held)."""
    if type_name != CREDIT_READINESS.name or "community_tier" in claims:
        return claims
    try:
        key = public_key_from_jwk(holder_jwk)
    except CommonsError:
        return claims
    if key.key_type is not KeyType.ED25519:
        return claims
    tier = capability.community_tier(session, encode_did_key(key))
    if tier is None:
        return claims
    return {**claims, "community_tier": tier.claim()}
