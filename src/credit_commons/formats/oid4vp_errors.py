"""The errors of OpenID4VP 1.0 messages (:mod:`credit_commons.formats.oid4vp` and
:mod:`credit_commons.formats.oid4vp_response`), and the Authorization Error Response codes
(§8.5) they answer with."""

from __future__ import annotations

from enum import StrEnum

from credit_commons.core.errors import ExitCode, IntegrityError
from credit_commons.formats.oauth import OAuthError

__all__ = [
    "AuthorizationRequestInvalid",
    "ErrorCode",
    "ResponseDecryptionFailed",
    "ResponseInvalid",
]


class ErrorCode(StrEnum):
    """The Authorization Error Response codes of §8.5 (RFC 6749's and this spec's)."""

    INVALID_REQUEST = "invalid_request"
    INVALID_CLIENT = "invalid_client"
    INVALID_SCOPE = "invalid_scope"
    ACCESS_DENIED = "access_denied"
    VP_FORMATS_NOT_SUPPORTED = "vp_formats_not_supported"
    INVALID_REQUEST_URI_METHOD = "invalid_request_uri_method"
    INVALID_TRANSACTION_DATA = "invalid_transaction_data"
    WALLET_UNAVAILABLE = "wallet_unavailable"


class AuthorizationRequestInvalid(OAuthError):
    """An Authorization Request (or its Request Object) that this wallet must refuse; its
    ``error`` is the §8.5 code to answer the verifier with (``invalid_request`` unless
    said otherwise)."""

    code = "oid4vp.request_invalid"
    title = "Invalid OpenID4VP request"
    exit_code = ExitCode.VALIDATION

    def __init__(self, description: str, error: ErrorCode = ErrorCode.INVALID_REQUEST) -> None:
        super().__init__(str(error), description)


class ResponseInvalid(OAuthError):
    """An Authorization Response that is malformed (§8.1, §8.2)."""

    code = "oid4vp.response_invalid"
    title = "Invalid OpenID4VP response"
    exit_code = ExitCode.VALIDATION

    def __init__(self, description: str) -> None:
        super().__init__(str(ErrorCode.INVALID_REQUEST), description)


class ResponseDecryptionFailed(IntegrityError):
    """An encrypted response that could not be decrypted.  One opaque error whatever the
    cause (wrong key, tampered ciphertext, refused algorithm), so it is no oracle."""

    code = "oid4vp.response_decryption_failed"
    title = "The response could not be decrypted"
