"""The reputation domain's errors: one class per refusal, each a :class:`CommonsError` with a
stable code (docs/reputation.md lists them)."""

from __future__ import annotations

from credit_commons.core.errors import (
    CommonsError,
    ConflictError,
    ForbiddenError,
    IntegrityError,
    NotFoundError,
    ValidationError,
)

__all__ = [
    "BudgetExhausted",
    "ContextNotAllowed",
    "EventInvalid",
    "EventOutsideWindow",
    "EventReplayed",
    "EventSignatureInvalid",
    "EventTooLarge",
    "MemberCredentialRefused",
    "RecipientExcluded",
    "ReputationError",
    "RulesUnavailable",
    "SenderLocked",
    "UnknownBlob",
]


class ReputationError(CommonsError):
    """Root of the reputation domain's errors."""

    code = "reputation.error"
    title = "Reputation error"


class EventInvalid(ValidationError, ReputationError):
    """A vouch or report that does not have seed 004's shape: an unknown or missing key, a
    value of the wrong form, a DID that is not an Ed25519 did:key, a self-vouch."""

    code = "reputation.event_invalid"
    title = "Invalid reputation event"


class EventTooLarge(EventInvalid):
    """A serialized event larger than 2 KiB."""

    code = "reputation.event_too_large"
    title = "Reputation event too large"
    status = 413


class EventSignatureInvalid(IntegrityError, ReputationError):
    """The event's ``sig`` (inline or detached JWS) does not verify under the ``from`` key."""

    code = "reputation.signature_invalid"
    title = "Invalid event signature"


class EventOutsideWindow(EventInvalid):
    """``issuedAt`` is not in ``epoch``, too far in the future or too old (the rule set's
    epoch window)."""

    code = "reputation.epoch_window"
    title = "Event outside the epoch window"


class ContextNotAllowed(EventInvalid):
    """The event's ``ctx`` is not one of the active rule set's contexts."""

    code = "reputation.context_not_allowed"
    title = "Context not allowed"


class EventReplayed(ConflictError, ReputationError):
    """An event with the same (``from``, ``nonce``) was accepted before (forever)."""

    code = "reputation.replay"
    title = "Event replayed"


class BudgetExhausted(ConflictError, ReputationError):
    """The sender has used its budget of vouches (or reports) in this context and epoch;
    budgets do not roll over, the next epoch starts from zero."""

    code = "reputation.budget_exhausted"
    title = "Budget exhausted for this epoch"


class SenderLocked(ForbiddenError, ReputationError):
    """The sender is not a member with an active KYC membership: outbound vouches and
    reports are locked until it is."""

    code = "reputation.sender_locked"
    title = "Sender locked until KYC membership"


class RecipientExcluded(ConflictError, ReputationError):
    """The event's subject is an excluded DID (its own tombstone, or its identity erased):
    nothing about it is scored any more, so no vouch or report is taken for it."""

    code = "reputation.recipient_excluded"
    title = "Recipient excluded"


class MemberCredentialRefused(ForbiddenError, ReputationError):
    """The credential presented to register a membership is not of a type the active rule
    set lists, not from one of its trusted issuers, or not bound to the registered DID."""

    code = "reputation.member_refused"
    title = "Membership credential refused"


class RulesUnavailable(ConflictError, ReputationError):
    """No rule set is in effect yet: events and memberships cannot be judged until an
    operator registers one (a state of the platform, not a failure: 409)."""

    code = "reputation.rules_unavailable"
    title = "No active rule set"


class UnknownBlob(NotFoundError, ReputationError):
    """No blob with that CID (or the CID is not one: the answer is the same)."""

    code = "reputation.blob_not_found"
    title = "Not found"


class UnknownMember(NotFoundError, ReputationError):
    """No membership recorded by that spine event (or the id is not one: the same answer)."""

    code = "reputation.member_not_found"
    title = "Not found"
