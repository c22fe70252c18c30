"""Reputation use cases for events and members, in the caller's unit of work.

:func:`submit_event` judges a vouch or report in the order that costs least first and
reveals least: shape and size, signature, context and epoch window (``events``), then the
sender's membership (locked, so budgets hold under concurrency), replay and budget; an
accepted event is stored with its blob and recorded on the spine as ``reputation.event`` in
the same transaction, and the log's pending receipt is returned.

:func:`register_member` records a credential a DID holds, once the gateway's verifier has
checked the presentation and its key binding to the DID (the verifier is the issuer's
sibling's business, composed above this layer): KYC when the rule set lists its type and
issuer, an attestation otherwise.

**Excluded DIDs** (issue 19 "tombstoned or restricted subjects skipped"): a DID is left out
of scoring for good when its key signs a tombstone (:func:`leave`, ``POST
/v1/reputation/members/tombstone``) or when the identity it belongs to is erased.  Privacy
sits above reputation in the layers, so reputation never asks privacy: the erasure path
(``privacy.erasure.erase_subject``, for the DID in the erased identity's profile) and the
membership status step (``jobs``, for a DID whose KYC credential this platform issued to a
subject since erased) call :func:`exclude_did`, which keeps a ``reputation_exclusions`` row
and records a ``reputation.excluded`` spine event in the caller's transaction.  The scorer
reads the exclusions whose spine event is a log leaf below the checkpoint it scores, as it
reads memberships, so a score stays derivable from logged facts.  An excluded DID sends
nothing (``reputation.sender_locked``), receives nothing (``reputation.recipient_excluded``)
and registers nothing (``reputation.member_refused``).

The rule set is passed in (the active one, ``rules``); nothing here reads the clock but
through ``rt.clock``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy.exc
from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject, sha256_hex
from credit_commons.core.ids import is_valid_id, new_id
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.ledger import pending_receipt_of
from credit_commons.reputation import store
from credit_commons.reputation.errors import (
    BudgetExhausted,
    ContextNotAllowed,
    EventInvalid,
    EventReplayed,
    MemberCredentialRefused,
    RecipientExcluded,
    SenderLocked,
    UnknownBlob,
    UnknownMember,
)
from credit_commons.reputation.events import (
    ReputationEvent,
    blob_cid,
    check_window,
    ed25519_did,
    parse_cid,
    parse_event,
)
from credit_commons.reputation.models import ReputationExclusionRow, ReputationMemberRow
from credit_commons.reputation.rules import RuleSet
from credit_commons.reputation.schemas import EventAccepted, MemberExcluded, MemberRegistered
from credit_commons.reputation.scores_bundle import TOMBSTONE_TYP, did_sha256, verify_did_proof
from credit_commons.runtime import Runtime

__all__ = [
    "DID_PSEUDONYM_DOMAIN",
    "EventRecorded",
    "ExclusionRecorded",
    "MemberRecorded",
    "MemberReinstated",
    "MemberRevoked",
    "MembershipStatusRef",
    "blob",
    "did_sha256",
    "exclude_did",
    "exclude_if_known",
    "is_member",
    "leave",
    "member_document",
    "membership_status_refs",
    "register_member",
    "reinstate_membership",
    "revoke_membership",
    "submit_event",
]

DID_PSEUDONYM_DOMAIN = "did"
"""The pseudonym domain of DIDs on the spine (a DID is a pseudonymous key already, but the
spine keeps only keyed pseudonyms)."""


class EventRecorded(EventDetails, event_type="reputation.event"):
    """A vouch or report was accepted: its CID (the blob is public), kind, context and
    epoch.  Sender and recipient are the event's actor and subject pseudonyms; their DIDs'
    plain SHA-256 (``from_sha256``, ``to_sha256``) let an offline verifier bind the DIDs to
    this event (DIDs are pseudonymous keys, no PII; the blob names them anyway)."""

    cid: Token
    kind: Literal["vouch", "report"]
    ctx: Token
    epoch: Token
    from_sha256: Digest
    to_sha256: Digest


class MemberRecorded(EventDetails, event_type="reputation.member"):
    """A DID registered a credential: KYC or an attestation, the SHA-256 of the issuer-signed
    JWT and of its status reference (the DID is the event's subject pseudonym; its plain
    SHA-256, ``did_sha256``, lets an offline verifier check whose membership this is)."""

    kyc: bool
    credential_sha256: Digest
    status_ref_sha256: Digest | None
    did_sha256: Digest


class MemberRevoked(EventDetails, event_type="reputation.member_revoked"):
    """A membership ended (``revoked``, final) or paused (``suspended``, until a
    ``reputation.member_reinstated``): its credential (the SHA-256 of the issuer-signed JWT)
    was found so at its status reference.  The DID is the event's subject pseudonym; the
    membership's ``reputation.member`` event is named by its id."""

    credential_sha256: Digest
    member_event_id: Token
    status: Literal["revoked", "suspended"]


class MemberReinstated(EventDetails, event_type="reputation.member_reinstated"):
    """A suspended membership resumed: its credential (the SHA-256 of the issuer-signed JWT)
    is valid again at its status reference.  The DID is the event's subject pseudonym; the
    membership's ``reputation.member`` event is named by its id."""

    credential_sha256: Digest
    member_event_id: Token


class ExclusionRecorded(EventDetails, event_type="reputation.excluded"):
    """A DID is left out of scoring for good: its own signed tombstone (``tombstone``) or
    the erasure of the identity it belongs to (``erased``).  The DID is the event's subject
    pseudonym; ``did_sha256`` (the DID string's plain SHA-256) lets whoever knows the DID
    check the event (the DID is a pseudonymous key, no PII)."""

    reason: Literal["tombstone", "erased"]
    did_sha256: Digest


@dataclass(frozen=True, slots=True)
class MembershipStatusRef:
    """A membership not revoked that names a status reference (``uri#idx``): what a
    status check reads, the issuer that signed the credential and its type, whether the
    membership is suspended now, and the credential's ``x5c`` chain when an X.509 anchor
    certified its issuer."""

    id: str
    did: str
    kyc: bool
    issuer: str
    status_ref: str
    suspended: bool = False
    vct: str = ""
    x5c: tuple[str, ...] | None = None


def _pseudonym(rt: Runtime, did: str) -> str:
    return rt.pseudonymizer.pseudonym(DID_PSEUDONYM_DOMAIN, did)


def submit_event(
    session: Session, rt: Runtime, data: bytes | str | Mapping[str, Any], rules: RuleSet
) -> EventAccepted:
    """Judge and, if accepted, record one vouch or report (see the module).

    Raises :class:`~credit_commons.reputation.errors.EventTooLarge`, ``EventInvalid``,
    ``EventSignatureInvalid``, ``ContextNotAllowed``, ``EventOutsideWindow``,
    :class:`SenderLocked`, :class:`EventReplayed` or :class:`BudgetExhausted`.
    """
    now = rt.clock.now()
    # 1-2. Shape, size and signature (pure).
    event = parse_event(data)
    event.verify()
    # 3. The rule set's contexts and epoch window.
    if event.ctx not in rules.contexts:
        raise ContextNotAllowed("the active rule set does not allow this context")
    check_window(
        event,
        now=now,
        max_age_seconds=rules.epoch.max_event_age_seconds,
        max_skew_seconds=rules.epoch.max_future_skew_seconds,
    )
    # 4. The sender is a KYC member (its rows locked for steps 5-6).
    kyc = (frozenset(rules.kyc.credential_types), frozenset(rules.kyc.trusted_issuers))
    if not store.kyc_memberships(store.lock_memberships(session, event.sender), now, kyc):
        raise SenderLocked("the sender has no active KYC membership")
    # 5-6. Replay: (from, nonce) is unique forever; budget, non-rollover: counted per epoch.
    replayed, used, gone = store.replay_and_budget(
        session,
        event.sender,
        nonce=event.nonce,
        ctx=event.ctx,
        epoch=event.epoch,
        kind=event.type,
        recipient=event.to,
    )
    if event.sender in gone:
        raise SenderLocked("the sender has no active KYC membership")
    if event.to in gone:
        raise RecipientExcluded("the recipient is excluded from scoring")
    if replayed:
        raise EventReplayed("an event with this nonce was accepted before")
    limit = (
        rules.budgets.vouches_per_epoch
        if event.type == "vouch"
        else rules.budgets.reports_per_epoch
    )
    if used >= limit:
        raise BudgetExhausted(f"the {event.type} budget of this context and epoch is used up")
    return _record(session, rt, event, now)


def _record(session: Session, rt: Runtime, event: ReputationEvent, now: datetime) -> EventAccepted:
    body = event.blob()
    cid = blob_cid(body)
    recorded = record_event(
        session,
        EventRecorded(
            cid=cid,
            kind=event.type,
            ctx=event.ctx,
            epoch=event.epoch,
            from_sha256=did_sha256(event.sender),
            to_sha256=did_sha256(event.to),
        ),
        actor=_pseudonym(rt, event.sender),
        subject=_pseudonym(rt, event.to),
        object=rt.objects.digest("reputation_event", cid),
        at=now,
    )
    row = {
        "cid": cid,
        "type": event.type,
        "sender": event.sender,
        "recipient": event.to,
        "ctx": event.ctx,
        "epoch": event.epoch,
        "nonce": event.nonce,
        "issued_at": event.issued_at,
        "accepted_at": now,
        "event_id": recorded.id,
    }
    try:
        store.add_event(session, row, body)
    except sqlalchemy.exc.IntegrityError as e:
        # A twin accepted since step 5 (the sender's rows are locked, so only through
        # another path): the unit of work rolls back whole, the spine event with it.
        raise EventReplayed("an event with this nonce was accepted before") from e
    receipt = pending_receipt_of(session, rt, recorded)
    return EventAccepted(cid=cid, leaf_index=None, event_id=recorded.id, receipt=receipt)


def member_document(session: Session, event_id: str) -> JsonObject:
    """The membership its ``reputation.member`` spine event recorded, as a follower needs it
    to score (docs/federation.md, "Scoring on a node"): the DID, KYC flag, credential
    SHA-256 and day — each checkable against the spine event — and the credential's issuer
    and type (as a score bundle states them).  Nothing else (no status reference, no
    revocation: those are spine events of their own).  Raises :class:`UnknownMember`, also
    once the DID is excluded (its tombstone, its identity erased): the same answer as for
    an event that records no membership."""
    row = store.member_by_event(session, event_id) if is_valid_id(event_id) else None
    if row is None or store.exclusion(session, row.did) is not None:
        raise UnknownMember("no such membership")
    return {
        "event": row.event_id,
        "did": row.did,
        "kyc": row.kyc,
        "since": row.since.isoformat(),
        "credentialSha256": row.credential_sha256,
        "issuer": row.issuer,
        "vct": row.vct,
    }


def blob(session: Session, cid: str) -> bytes:
    """The exact bytes ``cid`` addresses.  Raises :class:`UnknownBlob` for an unknown CID and
    for anything that is not one (the same answer: no oracle)."""
    try:
        parse_cid(cid)
    except EventInvalid as e:
        raise UnknownBlob("no such blob") from e
    body = store.blob(session, cid)
    if body is None:
        raise UnknownBlob("no such blob")
    return body


def is_member(session: Session, rt: Runtime, did: str) -> bool:
    """Whether ``did`` has an active KYC membership now."""
    return bool(store.kyc_memberships(store.memberships(session, did), rt.clock.now()))


def register_member(
    session: Session,
    rt: Runtime,
    *,
    did: str,
    vct: str,
    issuer: str,
    credential_sha256: str,
    status_ref: str | None,
    rules: RuleSet,
    x5c: str | None = None,
) -> MemberRegistered:
    """Record that ``did`` holds a credential the gateway verified, key-bound to it: KYC if
    the rule set lists ``vct`` and ``issuer``, else an attestation.  Registering the same
    credential again returns the first registration (idempotent).  ``x5c`` is the
    credential's ``x5c`` chain (JSON) when an X.509 anchor certified its issuer: the
    status step verifies the issuer's status list under its end-entity key.

    Raises :class:`EventInvalid` for a DID that is not an Ed25519 did:key or a digest that is
    not SHA-256 hex, and :class:`MemberCredentialRefused` for an excluded DID (the same
    answer as any refused credential).
    """
    ed25519_did(did)
    if len(credential_sha256) != 64 or set(credential_sha256) - set("0123456789abcdef"):
        raise EventInvalid("credential_sha256 must be SHA-256 hex")
    if store.exclusion(session, did) is not None:
        raise MemberCredentialRefused("the credential was not accepted")
    existing = store.member_row(session, did, credential_sha256)
    if existing is not None:
        return _member_view(existing)
    now = rt.clock.now()
    kyc = vct in rules.kyc.credential_types and issuer in rules.kyc.trusted_issuers
    status_digest = None if status_ref is None else sha256_hex(status_ref.encode("utf-8"))
    recorded = record_event(
        session,
        MemberRecorded(
            kyc=kyc,
            credential_sha256=credential_sha256,
            status_ref_sha256=status_digest,
            did_sha256=did_sha256(did),
        ),
        actor=_pseudonym(rt, did),
        subject=_pseudonym(rt, did),
        object=rt.objects.digest("reputation_member", f"{did} {credential_sha256}"),
        at=now,
    )
    row = ReputationMemberRow(
        id=new_id("mbr"),
        did=did,
        kyc=kyc,
        issuer=issuer,
        vct=vct,
        credential_sha256=credential_sha256,
        status_ref=status_ref,
        since=now.date(),
        registered_at=now,
        revoked_at=None,
        event_id=recorded.id,
        x5c=x5c,
    )
    store.add_member(session, row)
    return _member_view(row)


def membership_status_refs(session: Session) -> list[MembershipStatusRef]:
    """Every membership not revoked that names a status reference, in id order."""
    return [
        MembershipStatusRef(
            r.id,
            r.did,
            r.kyc,
            r.issuer,
            r.status_ref,
            suspended=r.suspended_at is not None,
            vct=r.vct,
            x5c=_chain(r.x5c),
        )
        for r in store.unrevoked_memberships(session)
        if r.status_ref is not None
    ]


def _chain(x5c: str | None) -> tuple[str, ...] | None:
    if x5c is None:
        return None
    try:
        chain = json.loads(x5c)
    except ValueError:
        return None
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        return None
    return tuple(chain)


def revoke_membership(
    session: Session, rt: Runtime, member_id: str, status: Literal["revoked", "suspended"]
) -> bool:
    """End or pause membership ``member_id`` now because its credential is ``status`` at
    its status reference: ``revoked_at`` (final) or ``suspended_at`` (a pause that
    :func:`reinstate_membership` ends) and a ``reputation.member_revoked`` spine event
    naming the status, in the caller's transaction, so the scorer's input stays derivable
    from logged events.  The row is locked first; a membership revoked already, suspended
    already (for a suspension) or unknown is left as it is and ``False`` returned
    (idempotent), else ``True``.
    """
    row = store.lock_member(session, member_id)
    if row is None or row.revoked_at is not None:
        return False
    if status == "suspended" and row.suspended_at is not None:
        return False
    now = rt.clock.now()
    record_event(
        session,
        MemberRevoked(
            credential_sha256=row.credential_sha256, member_event_id=row.event_id, status=status
        ),
        actor=_pseudonym(rt, row.did),
        subject=_pseudonym(rt, row.did),
        object=rt.objects.digest("reputation_member", f"{row.did} {row.credential_sha256}"),
        at=now,
    )
    if status == "revoked":
        row.revoked_at = now
    else:
        row.suspended_at = now
    session.flush()
    return True


def reinstate_membership(session: Session, rt: Runtime, member_id: str) -> bool:
    """Resume suspended membership ``member_id``: its credential is valid again at its
    status reference.  ``suspended_at`` is cleared and a ``reputation.member_reinstated``
    spine event recorded in the caller's transaction; the membership counts again from the
    next scoring pass, with its first ``since`` (tenure counts the pause).  The row is locked
    first; a membership not suspended, revoked or unknown is left as it is and ``False``
    returned (idempotent), else ``True``."""
    row = store.lock_member(session, member_id)
    if row is None or row.revoked_at is not None or row.suspended_at is None:
        return False
    record_event(
        session,
        MemberReinstated(credential_sha256=row.credential_sha256, member_event_id=row.event_id),
        actor=_pseudonym(rt, row.did),
        subject=_pseudonym(rt, row.did),
        object=rt.objects.digest("reputation_member", f"{row.did} {row.credential_sha256}"),
        at=rt.clock.now(),
    )
    row.suspended_at = None
    session.flush()
    return True


def exclude_did(
    session: Session, rt: Runtime, did: str, reason: Literal["tombstone", "erased"]
) -> MemberExcluded:
    """Leave ``did`` out of scoring for good (see the module): a ``reputation_exclusions``
    row and a ``reputation.excluded`` spine event in the caller's transaction.  A DID
    excluded already keeps its first exclusion, which is returned (idempotent).  The next
    scoring pass recomputes in full without it: it has no score record, and its vouches and
    reports count for nobody.  Raises :class:`EventInvalid` for a DID that is not an
    Ed25519 did:key."""
    ed25519_did(did)
    existing = store.exclusion(session, did)
    if existing is not None:
        return _exclusion_view(existing)
    now = rt.clock.now()
    recorded = record_event(
        session,
        ExclusionRecorded(reason=reason, did_sha256=did_sha256(did)),
        actor=_pseudonym(rt, did),
        subject=_pseudonym(rt, did),
        object=rt.objects.digest("reputation_exclusion", did),
        at=now,
    )
    row = ReputationExclusionRow(did=did, reason=reason, excluded_at=now, event_id=recorded.id)
    store.add_exclusion(session, row)
    return _exclusion_view(row)


def exclusions(session: Session) -> list[tuple[str, Literal["tombstone", "erased"]]]:
    """Every excluded DID with the reason it was excluded for, in DID order."""
    return [
        (row.did, "erased" if row.reason == "erased" else "tombstone")
        for row in store.exclusions(session)
    ]


def exclude_if_known(
    session: Session, rt: Runtime, did: str, reason: Literal["tombstone", "erased"]
) -> bool:
    """:func:`exclude_did` for a DID reputation has seen (a membership, or an event sent or
    received) and that is an Ed25519 did:key; ``False`` (nothing recorded) for any other,
    so an erasure records nothing about a DID that never took part."""
    try:
        ed25519_did(did)
    except EventInvalid:
        return False
    if not store.is_known(session, did):
        return False
    exclude_did(session, rt, did, reason)
    return True


def leave(session: Session, rt: Runtime, did: str, proof: str, audience: str) -> MemberExcluded:
    """A DID's own tombstone: ``proof`` is a ``reputation-tombstone+jwt`` signed by the
    DID's key (``sub`` the DID, ``aud`` this platform, ``iat`` at most 60 seconds old);
    then :func:`exclude_did` with reason ``tombstone``.  Final: the DID cannot register,
    vouch or be vouched for again.  Raises ``SubjectProofInvalid``."""
    verify_did_proof(proof, typ=TOMBSTONE_TYP, did=did, audience=audience, now=rt.clock.now())
    return exclude_did(session, rt, did, "tombstone")


def _exclusion_view(row: ReputationExclusionRow) -> MemberExcluded:
    return MemberExcluded(
        did=row.did,
        reason="erased" if row.reason == "erased" else "tombstone",
        excluded_at=row.excluded_at,
        event_id=row.event_id,
    )


def _member_view(row: ReputationMemberRow) -> MemberRegistered:
    return MemberRegistered(
        did=row.did,
        kyc=row.kyc,
        vct=row.vct,
        credential_sha256=row.credential_sha256,
        since=row.since,
        event_id=row.event_id,
    )
