"""The log's side of the checkpoint committee: registration (time-locked), the signing task,
partial signatures, equivocations and the group signature line (docs/log.md).

- **Registration.** A committee (a dealer's group file) is recorded as the next version.
  The first takes effect at once (nothing was cosigned before it); every later one only
  ``COMMONS_COMMITTEE_NOTICE`` seconds after it was registered, and its registration is a
  ``committee.changed`` event on the log, so everyone following the log sees a change of
  membership before it signs anything.
- **Task.** The newest checkpoint without a line of the committee in effect
  (``GET /v1/tasks/current``); older ones are covered by it through consistency.
- **Members' nodes.** Each member index of a committee version is bound to the full node
  that holds its share (a registered service instance, ``commons service-token register
  --service node``): at registration, or later by ``commons committee bind``, each binding
  a ``committee.member_bound`` event.  Fail closed: a member bound to no node, or to a node
  without a registered key, has its partials refused.
- **Partials.** A partial signature comes with the service token (scope
  ``partials:write``) of the node its member is bound to, and must verify, under the key
  the committee lists for its member index, over the checkpoint text this log would sign
  for the claimed size and root.  A token that is absent, invalid, expired or another
  node's is refused alike (401 ``auth.service_token_invalid``), before the BLS check.  A
  valid one for the log's root is stored; once
  ``t`` are stored they are combined and the committee's line, verified under the group
  key, is served with the checkpoint.  A valid one for **another** root at a size the log
  signed is an equivocation: refused, and reported once per member and size as a
  ``committee.equivocation`` event carrying both signed statements.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import b64_encode, sha256_hex
from credit_commons.core.errors import NotFoundError, ValidationError
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.keys import ServiceTokenInvalid, check_instance_name, registered_keys
from credit_commons.ledger import committee
from credit_commons.ledger import note as note_format
from credit_commons.ledger import service as log_service
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.committee_errors import (
    CommitteeCheckpointUnknown,
    CommitteeEquivocation,
    CommitteeExists,
    CommitteeKeyInvalid,
    CommitteeMembersUnbound,
    CommitteeNotConfigured,
    CommitteeNotCurrent,
)
from credit_commons.ledger.committee_setup import CommitteeGroup
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import (
    CheckpointRow,
    CommitteeConfigRow,
    CommitteeEquivocationRow,
    CommitteeMemberNodeRow,
    CommitteePartialRow,
    CommitteeSignatureRow,
)
from credit_commons.ledger.rfc6962 import Hash
from credit_commons.runtime import Runtime

log = logging.getLogger("credit_commons.ledger.committee")

__all__ = [
    "PARTIAL_TOKEN_REFUSED",
    "CommitteeChanged",
    "CommitteeEquivocated",
    "CommitteeMemberBound",
    "PartialOutcome",
    "RegisteredCommittee",
    "SigningTask",
    "bind_member_nodes",
    "committees",
    "current_committee",
    "current_task",
    "member_nodes",
    "register_committee",
    "submit_partial",
]


class CommitteeChanged(EventDetails, event_type="committee.changed"):
    """A committee was registered; it signs from ``effective_at`` on."""

    committee: Token
    version: int
    threshold: int
    members: int
    group_key: Digest  # SHA-256 hex of the 48-byte group key
    effective_at: datetime


class CommitteeMemberBound(EventDetails, event_type="committee.member_bound"):
    """Member ``member`` of committee version ``version`` sends its partials from the full
    node ``node`` (with that node's service token)."""

    committee: Token
    version: int
    member: int
    node: Token


PARTIAL_TOKEN_REFUSED = "a partial needs the service token of its member's node"  # noqa: S105
"""The one detail of every refused partial's token (absent, invalid, expired, another
node's, scope missing): a refusal says no more to the sender (the log says why)."""


class CommitteeEquivocated(EventDetails, event_type="committee.equivocation"):
    """Member ``member`` signed ``root`` for tree ``size`` (``signature``, its 96-byte BLS
    partial over the checkpoint text with that root), while the log's checkpoint of that
    size has ``logged_root`` (``log_signature``: the log's signed-note signature, key ID
    first, as base64; ``member_signature``: the member's own partial over the logged root,
    when it gave one too)."""

    committee: Token
    version: int
    member: int
    size: int
    root: Token
    signature: Token
    logged_root: Token
    log_signature: Token
    member_signature: Token | None = None


@dataclass(frozen=True)
class RegisteredCommittee:
    """A registered committee version and when it takes effect."""

    version: int
    group: CommitteeGroup
    registered_at: datetime
    effective_at: datetime

    def to_json(self, now: datetime) -> dict[str, object]:
        """The public view: the group file, version, times, and whether it is in effect."""
        return {
            **self.group.to_json(),
            "version": self.version,
            "registered_at": self.registered_at.isoformat(),
            "effective_at": self.effective_at.isoformat(),
            "in_effect": self.effective_at <= now,
        }


@dataclass(frozen=True)
class SigningTask:
    """The checkpoint the committee in effect is asked to sign."""

    committee: RegisteredCommittee
    size: int
    root: Hash
    checkpoint: str  # the log-signed note
    partials: int


@dataclass(frozen=True)
class PartialOutcome:
    """What a partial signature did: accepted (and how many there are, and whether the line
    is now served), or refused as an equivocation (``equivocation`` set; recorded once)."""

    accepted: bool
    partials: int
    threshold: int
    cosigned: bool
    equivocation: CommitteeEquivocation | None = None


def _registered(row: CommitteeConfigRow) -> RegisteredCommittee:
    keys = bytes(row.member_keys)
    size = committee.PUBLIC_KEY_SIZE
    group = CommitteeGroup(
        row.name,
        row.threshold,
        bytes(row.group_key),
        tuple(keys[i : i + size] for i in range(0, len(keys), size)),
    )
    return RegisteredCommittee(row.version, group, utc(row.registered_at), utc(row.effective_at))


def committees(session: Session) -> list[RegisteredCommittee]:
    """Every registered committee version, oldest first."""
    rows = session.scalars(select(CommitteeConfigRow).order_by(CommitteeConfigRow.version))
    return [_registered(row) for row in rows]


def current_committee(session: Session, now: datetime) -> RegisteredCommittee | None:
    """The committee in effect at ``now``: the newest version whose time lock has passed."""
    row = session.scalars(
        select(CommitteeConfigRow)
        .where(CommitteeConfigRow.effective_at <= now)
        .order_by(CommitteeConfigRow.version.desc())
        .limit(1)
    ).first()
    return None if row is None else _registered(row)


def register_committee(
    session: Session,
    rt: Runtime,
    group: CommitteeGroup,
    *,
    nodes: Sequence[str],
    now: datetime,
) -> RegisteredCommittee:
    """Record ``group`` as the next committee version, with a ``committee.changed`` event,
    its members bound to ``nodes`` (in index order, see :func:`bind_member_nodes`).

    The first committee takes effect at ``now``; a later one ``COMMONS_COMMITTEE_NOTICE``
    seconds after ``now``.  Raises :class:`CommitteeExists` for a group key registered
    before, and what :func:`bind_member_nodes` raises.
    """
    if session.scalar(
        select(CommitteeConfigRow.version).where(CommitteeConfigRow.group_key == group.group_key)
    ):
        raise CommitteeExists("this committee (group key) is registered already")
    last = session.scalar(select(func.max(CommitteeConfigRow.version)))
    version = 1 if last is None else int(last) + 1
    notice = 0.0 if last is None else rt.settings.committee_notice
    effective_at = now + timedelta(seconds=notice)
    row = CommitteeConfigRow(
        version=version,
        name=group.name,
        threshold=group.threshold,
        members=group.size,
        group_key=group.group_key,
        member_keys=b"".join(group.member_keys),
        registered_at=now,
        effective_at=effective_at,
    )
    session.add(row)
    record_event(
        session,
        CommitteeChanged(
            committee=group.name,
            version=version,
            threshold=group.threshold,
            members=group.size,
            group_key=sha256_hex(group.group_key),
            effective_at=effective_at,
        ),
        actor=rt.operator_actor(),
        at=now,
    )
    session.flush()
    bind_member_nodes(session, rt, version, nodes, now=now)
    return RegisteredCommittee(version, group, now, effective_at)


def bind_member_nodes(
    session: Session, rt: Runtime, version: int, nodes: Sequence[str], *, now: datetime
) -> None:
    """Bind member ``i`` of committee ``version`` to the full node ``nodes[i-1]`` (replacing
    a binding made before), each with a ``committee.member_bound`` event.

    Raises :class:`CommitteeMembersUnbound` unless ``nodes`` names one node per member,
    each once and each a node with a registered service key; :class:`NotFoundError` for
    no such version.
    """
    row = session.get(CommitteeConfigRow, version)
    if row is None:
        raise NotFoundError(f"no committee version {version}")
    if len(nodes) != row.members or len(set(nodes)) != len(nodes):
        raise CommitteeMembersUnbound(
            f"name the node of each of the {row.members} members, each once, in index order"
        )
    unregistered = [n for n in nodes if not _registered_node(session, n)]
    if unregistered:
        raise CommitteeMembersUnbound(
            "no registered service key for node "
            + ", ".join(unregistered)
            + " (commons service-token register --service node --name …)"
        )
    for member, node in enumerate(nodes, 1):
        session.merge(
            CommitteeMemberNodeRow(version=version, member=member, node=node, bound_at=now)
        )
        record_event(
            session,
            CommitteeMemberBound(committee=row.name, version=version, member=member, node=node),
            actor=rt.operator_actor(),
            at=now,
        )
    session.flush()


def _registered_node(session: Session, name: str) -> bool:
    try:
        check_instance_name("node", name)
    except ValidationError:
        return False
    return bool(registered_keys(session, "node", name))


def member_nodes(session: Session, version: int) -> dict[int, str]:
    """The node each member of committee ``version`` is bound to (an unbound one absent)."""
    rows = session.scalars(
        select(CommitteeMemberNodeRow).where(CommitteeMemberNodeRow.version == version)
    )
    return {row.member: row.node for row in rows}


def _line_version(session: Session, size: int) -> int | None:
    return session.scalar(
        select(CommitteeSignatureRow.version).where(CommitteeSignatureRow.size == size)
    )


def _partial_count(session: Session, version: int, size: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(CommitteePartialRow)
            .where(CommitteePartialRow.version == version, CommitteePartialRow.size == size)
        )
        or 0
    )


def current_task(
    session: Session, now: datetime
) -> tuple[RegisteredCommittee | None, SigningTask | None]:
    """The committee in effect and its task: the newest checkpoint without its line (none
    when there is no checkpoint, or the newest is signed already)."""
    current = current_committee(session, now)
    if current is None:
        return None, None
    latest = log_service.latest_checkpoint(session)
    if latest is None or latest.size == 0 or _line_version(session, latest.size) is not None:
        return current, None
    return current, SigningTask(
        current,
        int(latest.size),
        Hash(bytes(latest.root)),
        latest.note,
        _partial_count(session, current.version, latest.size),
    )


def _insert_ignore(session: Session, row: object) -> None:
    # A second copy of a row (a member retrying, two combiners racing) changes nothing.
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {c.name: getattr(row, c.key) for c in table.columns}
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing())


def _signature_b64(note: str, name: str, key_id: int) -> str:
    for signature in note_format.parse_note(note).signatures:
        if (signature.name, signature.key_id) == (name, key_id):
            return b64_encode(signature.key_id.to_bytes(4, "big") + signature.signature)
    raise CommitteeKeyInvalid("the checkpoint has no signature by the log key")


def submit_partial(
    session: Session,
    rt: Runtime,
    *,
    group_key: bytes,
    member: int,
    size: int,
    root: bytes,
    signature: bytes,
    node: str,
    now: datetime,
) -> PartialOutcome:
    """Check, store and, at the threshold, combine a partial the full node ``node`` sent.

    1. The committee in effect is ``group_key``'s (:class:`CommitteeNotConfigured`,
       :class:`CommitteeNotCurrent`); ``member`` is bound to ``node`` (``ServiceTokenInvalid``).
    2. The partial verifies under member ``member``'s key over this log's checkpoint text
       for ``size`` and ``root`` (:class:`CommitteeKeyInvalid`, :class:`CommitteeShareInvalid`).
    3. The log must have signed a checkpoint of ``size`` (:class:`CommitteeCheckpointUnknown`).
    4. Another root than the log's is an equivocation, reported once per member and size;
       returned as refused (the caller commits, then raises ``outcome.equivocation``).
    5. Store it; with ``t`` stored, combine them and store the committee's line.
    """
    current = _verified_partial(  # 1. and 2.
        session,
        rt,
        group_key,
        member=member,
        size=size,
        root=root,
        signature=signature,
        node=node,
        now=now,
    )
    group = current.group
    # 3.
    checkpoint = log_service.checkpoint_of_size(session, size)
    if checkpoint is None:
        raise CommitteeCheckpointUnknown("the log signed no checkpoint of that size")
    logged_root = Hash(bytes(checkpoint.root))
    # 4.
    reported = session.get(CommitteeEquivocationRow, (current.version, size, member))
    if root != logged_root or reported is not None:
        if reported is None:
            _report_equivocation(
                session,
                rt,
                current,
                member=member,
                size=size,
                root=root,
                signature=signature,
                checkpoint=checkpoint,
                now=now,
            )
        count = _partial_count(session, current.version, size)
        refusal = CommitteeEquivocation(
            f"member {member} signed another root than the log's for tree size {size}; "
            "reported on the log",
            extra={"member": member, "size": size, "version": current.version},
        )
        return PartialOutcome(False, count, group.threshold, False, refusal)
    # 5.
    _insert_ignore(
        session,
        CommitteePartialRow(
            version=current.version,
            size=size,
            member=member,
            root=root,
            signature=signature,
            created_at=now,
        ),
    )
    count = _partial_count(session, current.version, size)
    cosigned = _line_version(session, size) == current.version
    if not cosigned and count >= group.threshold:
        _combine(session, current, checkpoint.note, size, now)
        cosigned = True
    return PartialOutcome(True, count, group.threshold, cosigned)


def _verified_partial(
    session: Session,
    rt: Runtime,
    group_key: bytes,
    *,
    member: int,
    size: int,
    root: bytes,
    signature: bytes,
    node: str,
    now: datetime,
) -> RegisteredCommittee:
    # submit_partial steps 1 and 2: the committee in effect, the member's node, and the
    # partial under its key (the cheap checks before the pairing).
    current = current_committee(session, now)
    if current is None:
        raise CommitteeNotConfigured("no checkpoint committee is in effect on this log")
    if group_key != current.group.group_key:
        raise CommitteeNotCurrent(
            "that committee is not the one in effect", extra={"version": current.version}
        )
    bound = session.get(CommitteeMemberNodeRow, (current.version, member))
    if bound is None or bound.node != node:
        log.warning(
            "committee partial refused: not its member's node",
            extra={"fields": {"member": member, "node": node, "bound": bound is not None}},
        )
        raise ServiceTokenInvalid(PARTIAL_TOKEN_REFUSED)
    key = current.group.member(member)
    text = Checkpoint(origin=log_identity(rt).origin, size=size, root_hash=Hash(root)).format()
    committee.verify_partial(committee.PartialSignature(member, signature), text.encode(), key)
    return current


def _report_equivocation(
    session: Session,
    rt: Runtime,
    current: RegisteredCommittee,
    *,
    member: int,
    size: int,
    root: bytes,
    signature: bytes,
    checkpoint: CheckpointRow,
    now: datetime,
) -> None:
    # The event carries both signed statements; the row makes the report happen once.
    identity = log_identity(rt)
    own = session.get(CommitteePartialRow, (current.version, size, member))
    event = record_event(
        session,
        CommitteeEquivocated(
            committee=current.group.name,
            version=current.version,
            member=member,
            size=size,
            root=b64_encode(root),
            signature=b64_encode(signature),
            logged_root=Hash(bytes(checkpoint.root)).b64(),
            log_signature=_signature_b64(checkpoint.note, identity.origin, identity.note_key_id),
            member_signature=None if own is None else b64_encode(bytes(own.signature)),
        ),
        actor=rt.operator_actor("committee"),
        at=now,
    )
    _insert_ignore(
        session,
        CommitteeEquivocationRow(
            version=current.version,
            size=size,
            member=member,
            root=root,
            signature=signature,
            event_id=event.id,
            created_at=now,
        ),
    )
    # Its partial over the logged root is evidence now, no longer a vote.
    if own is not None:
        session.delete(own)
        session.flush()


def _combine(
    session: Session, current: RegisteredCommittee, note: str, size: int, now: datetime
) -> None:
    group = current.group
    rows = session.scalars(
        select(CommitteePartialRow)
        .where(CommitteePartialRow.version == current.version, CommitteePartialRow.size == size)
        .order_by(CommitteePartialRow.member)
        .limit(group.threshold)
    ).all()
    partials = [committee.PartialSignature(r.member, bytes(r.signature)) for r in rows]
    text = note_format.parse_note(note).text.encode("utf-8")
    signature = committee.combine(
        partials, group.threshold, message=text, group=group.group, members=group.members
    )
    signed = committee.add_committee_signature(note, group.name, signature, group=group.group)
    line = note_format.parse_note(signed).signatures[-1].line().rstrip("\n")
    _insert_ignore(
        session,
        CommitteeSignatureRow(size=size, version=current.version, line=line, created_at=now),
    )
