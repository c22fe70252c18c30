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

from credit_commons.core.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    ValidationError,
)
from credit_commons.ledger.errors import NoteSignatureInvalid, SignatureMissing, VerifierKeyInvalid

__all__ = [
    "CommitteeCheckpointUnknown",
    "CommitteeEquivocation",
    "CommitteeExists",
    "CommitteeKeyInvalid",
    "CommitteeMembersUnbound",
    "CommitteeNotConfigured",
    "CommitteeNotCurrent",
    "CommitteeNotEnoughShares",
    "CommitteeParametersInvalid",
    "CommitteeShareInvalid",
    "CommitteeSignatureInvalid",
    "CommitteeSignatureMissing",
    "CommitteeTaskRefused",
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


class CommitteeNotConfigured(NotFoundError):
    """No checkpoint committee is in effect on this log."""

    code = "committee.not_configured"
    title = "No checkpoint committee"


class CommitteeNotCurrent(ConflictError):
    """A partial signature for a committee (group key) that is not the one in effect."""

    code = "committee.not_current"
    title = "Not the committee in effect"


class CommitteeExists(ConflictError):
    """A committee with this group key was registered already."""

    code = "committee.exists"
    title = "Committee already registered"


class CommitteeCheckpointUnknown(NotFoundError):
    """A partial signature for a tree size the log signed no checkpoint of."""

    code = "committee.checkpoint_unknown"
    title = "No checkpoint of that size"


class CommitteeEquivocation(ConflictError):
    """A member's valid partial signature over another root than the log's at that size:
    refused, and reported on the log as a ``committee.equivocation`` event."""

    code = "committee.equivocation"
    title = "Partial signature over another root"


class CommitteeTaskRefused(IntegrityError):
    """A member refuses a signing task: the root cannot be reproduced from its own copy of
    the log, or does not extend the last root it signed."""

    code = "committee.task_refused"
    title = "Signing task refused"


class CommitteeMembersUnbound(ValidationError):
    """A committee's members cannot be bound to those nodes: not one per member, a node
    named twice, or a node without a registered service key."""

    code = "committee.members_unbound"
