"""The SD-JWT errors, at the path the published vector tests import.

The classes are ``formats/sd_jwt_errors.py``; ``tests/vectors`` is never edited, so its
import path is kept here.  Other code imports ``formats``.
"""

from credit_commons.formats.sd_jwt_errors import (
    AlgorithmNotAllowed,
    ClaimNameExists,
    ClaimsInvalid,
    DigestCollision,
    DisclosureDuplicate,
    DisclosureMisplaced,
    DisclosurePathInvalid,
    DisclosureUnreferenced,
    EmbeddedKeyNotAllowed,
    Expired,
    KbAudienceMismatch,
    KbNonceMismatch,
    KbStale,
    KeyBindingInvalid,
    KeyBindingMissing,
    KeyBindingUnexpected,
    Malformed,
    NotYetValid,
    ReservedClaim,
    SdHashMismatch,
    SdJwtInvalid,
    SignatureInvalid,
)

__all__ = [
    "AlgorithmNotAllowed",
    "ClaimNameExists",
    "ClaimsInvalid",
    "DigestCollision",
    "DisclosureDuplicate",
    "DisclosureMisplaced",
    "DisclosurePathInvalid",
    "DisclosureUnreferenced",
    "EmbeddedKeyNotAllowed",
    "Expired",
    "KbAudienceMismatch",
    "KbNonceMismatch",
    "KbStale",
    "KeyBindingInvalid",
    "KeyBindingMissing",
    "KeyBindingUnexpected",
    "Malformed",
    "NotYetValid",
    "ReservedClaim",
    "SdHashMismatch",
    "SdJwtInvalid",
    "SignatureInvalid",
]
