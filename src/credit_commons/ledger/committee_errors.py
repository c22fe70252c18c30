"""Errors of the checkpoint committee (t-of-n BLS threshold signatures on checkpoints).

A committee signature is one more signed-note signature line, so its failures extend the
note errors: :class:`CommitteeSignatureInvalid` is a :class:`NoteSignatureInvalid` and
:class:`CommitteeSignatureMissing` a :class:`SignatureMissing`, which lets a committee
verifier sit in the same :func:`~credit_commons.ledger.note.verify_note` call as the log's
own key.  A malformed key is a :class:`VerifierKeyInvalid`.  Combining too few partial
signatures, or asking for an impossible committee shape, is a caller mistake and raises a
:class:`ValidationError` instead.
"""

from __future__ import annotations

from credit_commons.core.errors import IntegrityError, ValidationError
from credit_commons.ledger.errors import NoteSignatureInvalid, SignatureMissing, VerifierKeyInvalid

__all__ = [
    "CommitteeKeyInvalid",
    "CommitteeNotEnoughShares",
    "CommitteeParametersInvalid",
    "CommitteeShareInvalid",
    "CommitteeSignatureInvalid",
    "CommitteeSignatureMissing",
]


class CommitteeSignatureInvalid(NoteSignatureInvalid):
    """A committee (group) signature is malformed or does not verify under the group key."""

    code = "committee.signature_invalid"
    title = "Committee signature invalid"


class CommitteeSignatureMissing(SignatureMissing):
    """A note carries no signature line by the committee key being checked."""

    code = "committee.signature_missing"
    title = "Committee signature missing"


class CommitteeShareInvalid(IntegrityError):
    """A partial signature is malformed, duplicated, from a non-member, or does not verify."""

    code = "committee.share_invalid"
    title = "Committee partial signature invalid"


class CommitteeKeyInvalid(VerifierKeyInvalid):
    """A committee key (group key, member key, key share or vkey) is malformed or invalid."""

    code = "committee.key_invalid"
    title = "Committee key invalid"


class CommitteeNotEnoughShares(ValidationError):
    """Fewer distinct valid partial signatures than the threshold were offered to combine."""

    code = "committee.not_enough_shares"
    title = "Not enough partial signatures"


class CommitteeParametersInvalid(ValidationError):
    """An impossible committee shape (threshold, size, member list) or a broken RNG."""

    code = "committee.parameters_invalid"
    title = "Committee parameters invalid"
