"""Errors raised by the issuer package.

Status-list errors map to the processing errors of the two specifications where they have
one: ``StatusListTooShort`` is W3C Bitstring Status List §3.5 ``STATUS_LIST_LENGTH_ERROR``
and ``StatusIndexOutOfRange`` is the ``RANGE_ERROR`` of §3.2 step 10; everything else that
is malformed is the ``MALFORMED_VALUE_ERROR`` of the Algorithms section.
"""

from __future__ import annotations

from credit_commons.core.errors import ConflictError, ValidationError

__all__ = [
    "StatusIndexOutOfRange",
    "StatusListError",
    "StatusListFull",
    "StatusListInvalid",
    "StatusListTooLarge",
    "StatusListTooShort",
    "StatusTransitionInvalid",
    "StatusValueInvalid",
]


class StatusListError(ValidationError):
    """Root of the status-list errors that concern a malformed list or a bad argument."""

    code = "status_list.error"
    title = "Status list error"


class StatusListInvalid(StatusListError):
    """An encoded status list is malformed: wrong shape, width, encoding or compression."""

    code = "status_list.invalid"
    title = "Invalid status list"


class StatusListTooLarge(StatusListInvalid):
    """A compressed status list expands beyond the configured limit (a decompression bomb)."""

    code = "status_list.too_large"
    title = "Status list too large"


class StatusListTooShort(StatusListInvalid):
    """A bitstring status list holds fewer entries than the herd-privacy minimum."""

    code = "status_list.too_short"
    title = "Status list too short"


class StatusIndexOutOfRange(StatusListError):
    """A status index lies outside the list."""

    code = "status_list.index_out_of_range"
    title = "Status index out of range"


class StatusValueInvalid(StatusListError):
    """A status value does not fit the list's bits per entry."""

    code = "status_list.value_invalid"
    title = "Invalid status value"


class StatusListFull(ConflictError):
    """Every index of a status list is already allocated."""

    code = "status_list.full"
    title = "Status list full"


class StatusTransitionInvalid(ConflictError):
    """A status change the credential's current status does not allow: anything from
    revoked (IETF Token Status List "Status Types": 0x01 INVALID is a revocation, only 0x02
    SUSPENDED is reversible; W3C Bitstring Status List: the ``revocation`` purpose is not
    reversible), reinstating a credential that is not suspended, or suspending one that
    already is."""

    code = "credential.status_transition_invalid"
    title = "Status change not allowed"
