"""Identity: identities and their identifiers (keyed pseudonyms), delegations, onboarding
authorities, and ``auth`` — principals, authentication and authorisation for every domain
above it.  Imports nothing above the ledger: no consent, no privacy."""

from __future__ import annotations

from credit_commons.identity.auth import (
    Principal,
    acting_for,
    actor_of,
    authorise,
    has_delegation,
    prune_access_tokens,
    signed_in_still,
    subject_of,
    token_digest,
)
from credit_commons.identity.delegations import delegatees_of, prune_delegations
from credit_commons.identity.holder_key import replace_did, rotation_message
from credit_commons.identity.links import is_tombstoned
from credit_commons.identity.predicates import ATTESTATION_TYP, Attestation
from credit_commons.identity.schemas import (
    ExportedDelegation,
    ExportedIdentifier,
    IdentityView,
    Permission,
)
from credit_commons.identity.service import existing_identities

__all__ = [
    "ATTESTATION_TYP",
    "Attestation",
    "ExportedDelegation",
    "ExportedIdentifier",
    "IdentityView",
    "Permission",
    "Principal",
    "acting_for",
    "actor_of",
    "authorise",
    "delegatees_of",
    "existing_identities",
    "has_delegation",
    "is_tombstoned",
    "prune_access_tokens",
    "prune_delegations",
    "replace_did",
    "rotation_message",
    "signed_in_still",
    "subject_of",
    "token_digest",
]
