"""Why a consent does not permit an access: one typed error per reason.

The codes are the ``reason`` of ``access.denied`` events; the lender is only ever told
"not permitted" (``consent.access.Denied``).
"""

from __future__ import annotations

from credit_commons.consent.access import Refused
from credit_commons.core.errors import CommonsError, ExitCode, ValidationError

__all__ = [
    "ConsentArtefactInvalid",
    "ConsentError",
    "ConsentExpired",
    "ConsentNotActive",
    "ConsentNotFound",
    "ConsentNotYetValid",
    "ConsentPaused",
    "ConsentRequestInvalid",
    "ConsentRevoked",
    "ConsentStateInvalid",
    "CredentialExpired",
    "CredentialNotIssued",
    "CredentialRevoked",
    "CredentialSuspended",
    "CredentialUnavailable",
    "OneTimeCodeRefused",
    "ScopeNotGranted",
    "UseExceeded",
]


class ConsentError(CommonsError):
    """A consent check failed."""

    code = "consent.error"
    title = "Not permitted"
    status = 403
    exit_code = ExitCode.FORBIDDEN


class ConsentNotFound(ConsentError):
    """No consent of this lender for this borrower (or it is not granted)."""

    code = "consent.not_found"


class ConsentNotActive(ConsentError):
    """The consent exists but was never granted (still a pending request)."""

    code = "consent.not_active"


class ConsentNotYetValid(ConsentError):
    """The consent's start lies in the future."""

    code = "consent.not_yet_valid"


class ConsentExpired(ConsentError):
    """The consent's expiry has passed."""

    code = "consent.expired"


class ConsentPaused(ConsentError):
    """The borrower paused the consent."""

    code = "consent.paused"


class ConsentRevoked(ConsentError):
    """The borrower revoked the consent (or rejected the request)."""

    code = "consent.revoked"


class ScopeNotGranted(ConsentError):
    """The credential type or a claim asked for is outside the consent's scope."""

    code = "consent.scope_not_granted"


class UseExceeded(ConsentError):
    """A second fetch on a one-time consent, or a fetch past the frequency."""

    code = "consent.use_exceeded"


class ConsentArtefactInvalid(ConsentError):
    """A presented artefact that is not the one the platform signed (tampered, forged)."""

    code = "consent.artefact_invalid"


class CredentialUnavailable(ConsentError):
    """The consent grants the access, but the borrower holds no valid credential of the
    scoped type to share; the subclass says why (of the newest one issued)."""

    code = "credential.unavailable"


class CredentialNotIssued(CredentialUnavailable):
    """No credential of the scoped type was ever issued to the borrower."""

    code = "credential.not_issued"


class CredentialRevoked(CredentialUnavailable):
    """The borrower's credential of the scoped type was revoked by its issuer."""

    code = "credential.revoked"


class CredentialSuspended(CredentialUnavailable):
    """The borrower's credential of the scoped type is suspended by its issuer."""

    code = "credential.suspended"


class CredentialExpired(CredentialUnavailable):
    """The borrower's credential of the scoped type has expired."""

    code = "credential.expired"


class ConsentRequestInvalid(ValidationError):
    """A consent request the template or the catalogue does not allow."""

    code = "consent.request_invalid"
    title = "Invalid consent request"


class ConsentStateInvalid(CommonsError):
    """The action does not apply to the consent's current state (approve a revoked one)."""

    code = "consent.state_invalid"
    title = "Consent state does not allow this"
    status = 409
    exit_code = ExitCode.CONFLICT


class OneTimeCodeRefused(Refused, ConsentStateInvalid):
    """The assisted flow's agent submitted a code when none can be accepted (none live, or
    too many wrong tries): the agent's 409, and a record in the borrower's history."""
