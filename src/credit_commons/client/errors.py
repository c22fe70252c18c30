"""The lender client's errors: what the platform answered, and what the client refuses.

An answer other than 2xx becomes an :class:`ApiError` subclass chosen by its HTTP status,
carrying the platform's problem+json (RFC 9457) — or, from the token endpoint, its RFC 6749
§5.2 error — as ``body``; its ``code`` is the platform's.  The CLI maps each to its exit code
like any other :class:`~credit_commons.core.errors.CommonsError`.  Verification failures are
the verifying code's own errors (``credential.*``, ``log.*``), never re-wrapped.
"""

from __future__ import annotations

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    ConflictError,
    ExitCode,
    IntegrityError,
    UnavailableError,
    ValidationError,
)

__all__ = [
    "ApiConflict",
    "ApiError",
    "ApiForbidden",
    "ApiInvalid",
    "ApiNotFound",
    "ApiRateLimited",
    "ApiUnavailable",
    "ArtefactInvalid",
    "BundleKeyInvalid",
    "ConsentPending",
    "KeyFileExists",
    "KeyFileInvalid",
    "KeyFileUnprotected",
    "LenderNotConfigured",
    "PlatformUrlInvalid",
    "ReceiptMismatch",
    "ReceiptPending",
    "RetrievalInvalid",
    "WebhookInvalid",
    "api_error",
]


class ApiError(CommonsError):
    """The platform refused a request; ``body`` is its problem+json (or OAuth error) and
    ``code`` its stable code."""

    title = "Platform refused the request"

    def __init__(self, status: int, body: JsonObject) -> None:
        detail = body.get("detail") or body.get("error_description") or body.get("title")
        super().__init__(str(detail or f"HTTP {status}"))
        # The platform's own code: a problem's ``code``, or ``oauth.<error>`` (RFC 6749 §5.2).
        code = body.get("code") or (f"oauth.{body['error']}" if "error" in body else None)
        self.code = str(code or f"http.{status}")  # type: ignore[misc]
        self.status = status  # type: ignore[misc]
        self.body = body

    def problem(self, instance: str | None = None) -> JsonObject:
        """The platform's answer as it came (with ``code`` and ``status`` filled in)."""
        return {"status": self.status, **self.body, "code": self.code}


class ApiInvalid(ApiError):
    """400 or 422: the request was malformed or refused as invalid."""

    exit_code = ExitCode.VALIDATION


class ApiForbidden(ApiError):
    """401 or 403: not authenticated, or not permitted (the platform says no more)."""

    exit_code = ExitCode.FORBIDDEN


class ApiNotFound(ApiError):
    """404: no such thing, or nothing the caller may see."""

    exit_code = ExitCode.NOT_FOUND


class ApiConflict(ApiError):
    """409: the request conflicts with the current state."""

    exit_code = ExitCode.CONFLICT


class ApiRateLimited(ApiError):
    """429: a rate limit; ``retry_after`` is the platform's ``Retry-After`` in seconds."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, status: int, body: JsonObject, retry_after: int | None) -> None:
        super().__init__(status, body)
        self.retry_after = retry_after


class ApiUnavailable(ApiError):
    """5xx, or the platform could not be reached at all."""

    exit_code = ExitCode.UNAVAILABLE


def api_error(status: int, body: JsonObject, retry_after: int | None = None) -> ApiError:
    """The :class:`ApiError` subclass for an answer with ``status`` and ``body``."""
    if status == 429:
        return ApiRateLimited(status, body, retry_after)
    if status in (401, 403):
        return ApiForbidden(status, body)
    if status == 404:
        return ApiNotFound(status, body)
    if status == 409:
        return ApiConflict(status, body)
    if 400 <= status < 500:
        return ApiInvalid(status, body)
    return ApiUnavailable(status, body)


class PlatformUrlInvalid(ConfigurationError):
    """The platform URL is not https (or http on a loopback address, for development)."""

    code = "lender.url_invalid"
    title = "Platform URL not acceptable"


class BundleKeyInvalid(ConfigurationError):
    """The pinned trust bundle key is neither a ``did:key`` nor a public JWK."""

    code = "lender.bundle_key_invalid"
    title = "Trust bundle key not acceptable"


class LenderNotConfigured(ConfigurationError):
    """A setting the operation needs (client id, key file, log key) is missing."""

    code = "lender.not_configured"
    title = "Lender not configured"


class KeyFileExists(ConflictError):
    """The key file exists already: a client key is never overwritten."""

    code = "lender.key_exists"
    title = "Key file exists"


class KeyFileInvalid(ValidationError):
    """The key file is not a lender key this client wrote."""

    code = "lender.key_invalid"
    title = "Key file invalid"


class KeyFileUnprotected(ConfigurationError):
    """The key file may be read by other users (its mode is not 0600 or stricter)."""

    code = "lender.key_unprotected"
    title = "Key file readable by others"


class ConsentPending(UnavailableError):
    """The borrower has not decided within the wait; ask again later."""

    code = "lender.consent_pending"
    title = "Consent still pending"


class ReceiptPending(UnavailableError):
    """No checkpoint covers the access event yet; ask again after the next checkpoint."""

    code = "lender.receipt_pending"
    title = "Receipt not yet available"


class ArtefactInvalid(IntegrityError):
    """A consent artefact that is not the platform's signed artefact for this consent."""

    code = "lender.artefact_invalid"
    title = "Consent artefact invalid"


class WebhookInvalid(IntegrityError):
    """A webhook body that is not a notice the platform signed for this lender."""

    code = "lender.webhook_invalid"
    title = "Webhook invalid"


class RetrievalInvalid(IntegrityError):
    """A retrieval whose parts disagree (a disclosed claim missing from the credential)."""

    code = "lender.retrieval_invalid"
    title = "Retrieval invalid"


class ReceiptMismatch(IntegrityError):
    """A receipt that verifies but is not the receipt of this access."""

    code = "lender.receipt_mismatch"
    title = "Receipt is for another event"
