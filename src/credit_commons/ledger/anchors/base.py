"""What every anchor backend shares: the anchored record, the receipt, the protocol, errors.

An *anchor* publishes one transparency-log checkpoint — origin, tree size, root hash — to a
ledger the log operator does not control, so that a later fork of the log is evident to
anyone holding the anchor.  A backend is pure of any database: ``publish`` writes one record
and returns a receipt, ``read_back`` turns a receipt into the record it locates, or raises.
Retrying, scheduling and bookkeeping belong to the outbox that calls the backends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from credit_commons.core.errors import (
    CommonsError,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)

__all__ = [
    "MAX_ORIGIN_BYTES",
    "MAX_SIZE",
    "AnchorBackend",
    "AnchorError",
    "AnchorInvalid",
    "AnchorNotFound",
    "AnchorPublishFailed",
    "AnchorReceipt",
    "AnchorRecord",
    "AnchorUnavailable",
    "backoff_delay",
    "check_backend_name",
]

# The EVM contract stores the origin as String[255], a length in bytes of UTF-8.
MAX_ORIGIN_BYTES = 255
# Tree sizes are uint64, as in RFC 9162 §4.10 and C2SP tlog-checkpoint.
MAX_SIZE = 2**64 - 1
ROOT_SIZE = 32
# Control characters are refused as in C2SP signed-note §Format: an origin is one line of
# note text, and the file journal is line-oriented.
_CONTROL = re.compile("[\x00-\x1f]")
# Backend names route receipts to backends, so they are short, lower-case identifiers.
_BACKEND_NAME = re.compile("[a-z0-9][a-z0-9._:-]{0,63}")
# Locators are opaque to everyone but their backend; printable ASCII keeps them safe to log,
# to store in any column type and to put in a URL.
_LOCATOR = re.compile("[\x21-\x7e]{1,512}")


class AnchorError(CommonsError):
    """Root of the anchor errors.  ``retryable`` tells the outbox whether to try again."""

    code = "anchor.error"
    title = "Anchor error"
    retryable: ClassVar[bool] = False


class AnchorPublishFailed(AnchorError, UnavailableError):
    """Publishing did not complete: the ledger was unreachable, refused or timed out.

    Always retryable: nothing was recorded that a receipt points to, although an EVM
    transaction that timed out may still be mined later (an anchor published twice is
    harmless; both copies state the same checkpoint).
    """

    code = "anchor.publish_failed"
    title = "Anchor could not be published"
    retryable = True


class AnchorUnavailable(AnchorError, UnavailableError):
    """The ledger could not be read right now (I/O error, RPC unreachable); try again later.

    Distinct from :class:`AnchorNotFound`: nothing is known about the anchor, so a
    reconciler must not conclude that it is gone.
    """

    code = "anchor.unavailable"
    title = "Anchor ledger unavailable"
    retryable = True


class AnchorNotFound(AnchorError, NotFoundError):
    """The receipt points to nothing (any more): a missing journal, a reorganised chain."""

    code = "anchor.not_found"
    title = "Anchor not found"


class AnchorInvalid(AnchorError, IntegrityError):
    """A record, receipt or journal that fails a check: malformed, tampered or foreign."""

    code = "anchor.invalid"
    title = "Anchor invalid"


@dataclass(frozen=True)
class AnchorRecord:
    """The checkpoint data an anchor carries: log origin, tree size and root hash.

    Valid once built: raises :class:`AnchorInvalid` unless ``origin`` is a non-empty string
    of at most 255 UTF-8 bytes without control characters (newline included), ``size`` an
    integer in ``[0, 2**64 - 1]`` and ``root`` exactly 32 bytes.
    """

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        origin = self.origin
        if not isinstance(origin, str) or not origin or _CONTROL.search(origin):
            raise AnchorInvalid("origin must be one non-empty line without control characters")
        try:
            encoded = origin.encode("utf-8")
        except UnicodeEncodeError as e:
            raise AnchorInvalid("origin must be valid UTF-8") from e
        if len(encoded) > MAX_ORIGIN_BYTES:
            raise AnchorInvalid(f"origin must be at most {MAX_ORIGIN_BYTES} UTF-8 bytes")
        size = self.size
        # bool is an int subclass; True is not a tree size.
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
            raise AnchorInvalid("size must be an integer in [0, 2**64 - 1]")
        if not isinstance(self.root, bytes | bytearray | memoryview):
            raise AnchorInvalid("root must be a byte string")
        # A bytes subclass (such as the ledger's Hash) or a buffer is stored as plain bytes so
        # records compare and hash by value.
        root = bytes(self.root)
        if len(root) != ROOT_SIZE:
            raise AnchorInvalid(f"root must be {ROOT_SIZE} bytes, got {len(root)}")
        object.__setattr__(self, "root", root)


@dataclass(frozen=True)
class AnchorReceipt:
    """Where a backend put a record: the backend's name and a backend-specific locator.

    Valid once built: raises :class:`AnchorInvalid` unless ``backend`` is a short lower-case
    name and ``locator`` 1–512 printable ASCII characters without spaces.
    """

    backend: str
    locator: str

    def __post_init__(self) -> None:
        if not isinstance(self.backend, str) or not _BACKEND_NAME.fullmatch(self.backend):
            raise AnchorInvalid("receipt backend must be a short lower-case name")
        if not isinstance(self.locator, str) or not _LOCATOR.fullmatch(self.locator):
            raise AnchorInvalid("receipt locator must be 1-512 printable ASCII characters")

    def to_json(self) -> dict[str, str]:
        """This receipt as a JSON object (for the outbox table or an API response)."""
        return {"backend": self.backend, "locator": self.locator}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> AnchorReceipt:
        """Parse :meth:`to_json` output.

        Raises :class:`AnchorInvalid` unless ``value`` is an object with exactly the string
        members ``backend`` and ``locator``, each valid as above.
        """
        if not isinstance(value, Mapping) or set(value) != {"backend", "locator"}:
            raise AnchorInvalid("a receipt is an object with exactly backend and locator")
        return cls(backend=value["backend"], locator=value["locator"])


@runtime_checkable
class AnchorBackend(Protocol):
    """An external ledger that checkpoints are anchored to.

    ``publish`` returns only once the record is durably on the ledger (as the backend
    defines durable) and raises :class:`AnchorPublishFailed` otherwise (or
    :class:`AnchorInvalid` when the backend's own ledger is found corrupt).  ``read_back``
    returns the record a receipt locates, after checking it, and raises
    :class:`AnchorNotFound`, :class:`AnchorInvalid` (a receipt of another backend too) or
    :class:`AnchorUnavailable`.
    """

    name: str

    def publish(self, record: AnchorRecord, /) -> AnchorReceipt:
        """Anchor ``record``; raises :class:`AnchorPublishFailed` or :class:`AnchorInvalid`."""
        ...

    def read_back(self, receipt: AnchorReceipt, /) -> AnchorRecord:
        """The record at ``receipt``.

        Raises :class:`AnchorNotFound`, :class:`AnchorInvalid` or :class:`AnchorUnavailable`.
        """
        ...


def check_backend_name(name: str) -> str:
    """Return ``name`` if it can name a backend in receipts.

    Raises :class:`ConfigurationError` otherwise: backend names come from configuration.
    """
    if not isinstance(name, str) or not _BACKEND_NAME.fullmatch(name):
        raise ConfigurationError("an anchor backend name must be a short lower-case name")
    return name


# 2.0 ** 1024 overflows a float; every larger exponent is past any cap anyway.
_MAX_EXPONENT = 1023


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: Callable[[], float]) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Exponential backoff with "full jitter": a uniform draw from ``[0, min(cap, base *
    2**attempt)]``, which spreads retries of many clients better than a fixed or "equal"
    jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015).  ``jitter``
    returns the draw in ``[0, 1]`` — pass ``random.random`` in production and a constant in
    tests, so delays are reproducible.

    Raises :class:`ValidationError` for a negative ``attempt``, a non-positive or
    non-finite ``base``, a ``cap`` below ``base`` or non-finite, or a jitter outside
    ``[0, 1]``.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValidationError("attempt must be a non-negative integer")
    # NaN fails every comparison, so the chained comparisons also refuse it.
    if not 0 < base < float("inf"):
        raise ValidationError("base must be a positive finite number of seconds")
    if not base <= cap < float("inf"):
        raise ValidationError("cap must be finite and at least base")
    draw = jitter()
    if not 0.0 <= draw <= 1.0:
        raise ValidationError("jitter must return a number in [0, 1]")
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT))
    return draw * ceiling
