"""Typed Python clients of the platform.  ``Lender`` is a lender's whole path: client key,
registration, ``private_key_jwt`` tokens, discovery, consent, retrieval, and verification of
what was retrieved (docs/lenders.md).  The ``commons lender`` commands are built on it."""

from credit_commons.client.errors import (
    ApiConflict,
    ApiError,
    ApiForbidden,
    ApiInvalid,
    ApiNotFound,
    ApiRateLimited,
    ApiUnavailable,
    ArtefactInvalid,
    BundleKeyInvalid,
    ConsentPending,
    KeyFileExists,
    KeyFileInvalid,
    KeyFileUnprotected,
    LenderNotConfigured,
    PlatformUrlInvalid,
    ReceiptMismatch,
    ReceiptPending,
    RetrievalInvalid,
    WebhookInvalid,
)
from credit_commons.client.keyfile import LenderKey
from credit_commons.client.lender import Lender
from credit_commons.client.models import (
    AccessToken,
    Consent,
    DiscoveryEntry,
    Retrieval,
    VerifiedRetrieval,
    WebhookNotice,
)
from credit_commons.client.trust_bundle import BundleVersions

__all__ = [
    "AccessToken",
    "ApiConflict",
    "ApiError",
    "ApiForbidden",
    "ApiInvalid",
    "ApiNotFound",
    "ApiRateLimited",
    "ApiUnavailable",
    "ArtefactInvalid",
    "BundleKeyInvalid",
    "BundleVersions",
    "Consent",
    "ConsentPending",
    "DiscoveryEntry",
    "KeyFileExists",
    "KeyFileInvalid",
    "KeyFileUnprotected",
    "Lender",
    "LenderKey",
    "LenderNotConfigured",
    "PlatformUrlInvalid",
    "ReceiptMismatch",
    "ReceiptPending",
    "Retrieval",
    "RetrievalInvalid",
    "VerifiedRetrieval",
    "WebhookInvalid",
    "WebhookNotice",
]
