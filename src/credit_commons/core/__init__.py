"""Cross-cutting building blocks: settings, errors, encodings, ids, clock, storage."""

from credit_commons.core.clock import Clock, FixedClock, SystemClock
from credit_commons.core.encoding import (
    b64_decode,
    b64_encode,
    b64url_decode,
    b64url_encode,
    canonical_json,
    sha256,
    sha256_hex,
)
from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    IntegrityError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from credit_commons.core.ids import IdGenerator, new_id
from credit_commons.core.pseudonym import Pseudonymizer
from credit_commons.core.settings import Environment, Settings

__all__ = [
    "Clock",
    "CommonsError",
    "ConfigurationError",
    "ConflictError",
    "Environment",
    "FixedClock",
    "ForbiddenError",
    "IdGenerator",
    "IntegrityError",
    "NotFoundError",
    "Pseudonymizer",
    "Settings",
    "SystemClock",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "b64_decode",
    "b64_encode",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "new_id",
    "sha256",
    "sha256_hex",
]
