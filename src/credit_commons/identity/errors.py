"""Errors raised by the identity package.

An identifier error says *which kind* of identifier failed and *which check* failed, but never
echoes the value: identifiers such as Aadhaar numbers are personal data, and error details
end up in logs and problem+json responses.
"""

from __future__ import annotations

from typing import Final

from credit_commons.core.errors import ConflictError, ForbiddenError, ValidationError

__all__ = [
    "IdentifierBoundElsewhere",
    "IdentifierErased",
    "IdentifierInvalid",
    "NotAnOnboardingAuthority",
]

_LABELS: Final = {
    "aadhaar": "Aadhaar number",
    "pan": "PAN",
    "gstin": "GSTIN",
    "udyam": "Udyam registration number",
    "mobile": "mobile number",
}

_REASONS: Final = {
    "type": "it is not a string",
    "format": "it does not have the required format",
    "checksum": "its check digit or check character does not match",
    "holder_type": "its fourth character is not a known PAN holder type",
    "state_code": "its state code is not a known GST state code",
    "serial": "its serial number is out of range",
    "prefix": "its country or trunk prefix is not Indian",
}


class IdentifierInvalid(ValidationError):
    """An identifier of a given kind failed validation.

    ``kind`` is the identifier kind (``"aadhaar"``, ``"pan"``, ...) and ``reason`` one of
    ``type``, ``format``, ``checksum``, ``holder_type``, ``state_code``, ``serial`` or
    ``prefix``; both are also in ``extra``.  The offending value is never included.
    """

    code = "identity.identifier_invalid"
    title = "Invalid identifier"

    def __init__(self, kind: str, reason: str) -> None:
        label = _LABELS.get(str(kind), "identifier")
        because = _REASONS.get(reason, "it failed validation")
        super().__init__(
            f"invalid {label}: {because}",
            extra={"kind": str(kind), "reason": reason},
        )
        self.kind = str(kind)
        self.reason = reason


class IdentifierBoundElsewhere(ConflictError):
    """An onboarding authority tried to bind an identifier that another identity holds bound.

    Said only to the authority (an accountable party), never to a self-registration.
    """

    code = "identity.identifier_bound_elsewhere"
    title = "Identifier bound to another identity"


class IdentifierErased(ConflictError):
    """An onboarding authority tried to bind an identifier of an erased subject."""

    code = "identity.identifier_erased"
    title = "Identifier of an erased subject"


class NotAnOnboardingAuthority(ForbiddenError):
    """The caller is authenticated but is not an active onboarding authority."""

    code = "identity.not_onboarding_authority"
    title = "Not an onboarding authority"
