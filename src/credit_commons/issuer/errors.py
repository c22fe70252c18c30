"""Errors raised by the issuer package (the status-list encoding errors are the ``formats``
ones, named here too).

Status-list errors map to the processing errors of the two specifications where they have
one: ``StatusListTooShort`` is W3C Bitstring Status List §3.5 ``STATUS_LIST_LENGTH_ERROR``
and ``StatusIndexOutOfRange`` is the ``RANGE_ERROR`` of §3.2 step 10; everything else that
is malformed is the ``MALFORMED_VALUE_ERROR`` of the Algorithms section.
"""

from __future__ import annotations

from typing import ClassVar

from credit_commons.core.errors import CommonsError, ConflictError, ExitCode
from credit_commons.formats.status_list import (
    StatusIndexOutOfRange,
    StatusListError,
    StatusListInvalid,
    StatusListTooLarge,
    StatusListTooShort,
    StatusValueInvalid,
)

__all__ = [
    "StatusFormatUnavailable",
    "StatusIndexOutOfRange",
    "StatusListError",
    "StatusListFull",
    "StatusListInvalid",
    "StatusListTooLarge",
    "StatusListTooShort",
    "StatusTransitionInvalid",
    "StatusValueInvalid",
    "VctTaken",
]


class VctTaken(ConflictError):
    """A credential type whose ``vct`` another type of the catalogue has (a ``vct`` names
    one type)."""

    code = "credential_type.vct_taken"
    title = "Another credential type has this vct"


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


class StatusFormatUnavailable(CommonsError):
    """A status list asked for in a form it has no rendering in (HTTP 406: the CWT form
    of a W3C Bitstring Status List)."""

    code = "status_list.not_acceptable"
    title = "Status list form not available"
    status: ClassVar[int] = 406
    exit_code: ClassVar[int] = ExitCode.VALIDATION
