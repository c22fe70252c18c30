"""The OpenID4VP transaction table's operations: a request's row, its canonical hash, the
one-time consumption of its challenge (pipeline step 1) and the decision record.

A transaction is an authorization request a verifier made (OpenID4VP 1.0 §5): it holds the
one-time ``nonce`` the wallet binds its presentations to, the ``state`` the response names,
the SHA-256 of the canonical request, and — once the response came — the decision with its
precise reason.  The use cases that build on it are in ``verifier/service.py``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from sqlalchemy import DateTime, Table, bindparam, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from credit_commons.core.clock import utc
from credit_commons.core.db import HotQuery, HotStatement, stored_datetime
from credit_commons.core.encoding import canonical_json, json_decode
from credit_commons.verifier.models import VpTransactionRow
from credit_commons.verifier.reasons import Reason, VerificationDenied

__all__ = [
    "ALLOW",
    "DENY",
    "Challenge",
    "Consumed",
    "consume_challenge",
    "hash_secret",
    "load_transaction",
    "request_hash",
    "write_decision",
]

ALLOW: Final = "allow"
DENY: Final = "deny"


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) a one-time secret (a response code) is stored as."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def request_hash(row: VpTransactionRow) -> str:
    """The SHA-256 (hex) of the transaction's canonical request: everything the wallet was
    asked under, as the canonical JSON of its members (``core.encoding.canonical_json``).

    Step 1 recomputes it from the row at the response: a row whose query, client, nonce,
    policy, response mode, encryption key or redirect was changed after the request went
    out no longer matches the request the wallet answered."""
    body: dict[str, object] = {
        "client_id": row.client_id,
        "client_id_prefix": row.client_id_prefix,
        "dcql_query": json_decode(row.dcql),
        "enc_public": row.enc_public,
        "expires_at": int(utc(row.expires_at).timestamp()),
        "id": row.id,
        "nonce": row.nonce,
        "policy_id": row.policy_id,
        "policy_version": row.policy_version,
        "redirect_uri": row.redirect_uri,
        "response_mode": row.response_mode,
        "state": row.state,
        "zk_predicates": json_decode(row.zk_predicates),
    }
    # Members added since the first transactions: hashed only when set, so the hash of a
    # request made before them stays what it was.
    if row.policy_owner is not None:
        body["policy_owner"] = row.policy_owner
    if row.purpose is not None:
        body["purpose"] = row.purpose
    if row.client_name is not None:
        body["client_name"] = row.client_name
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Challenge:
    """What step 1 checks a response against: the transaction whose response endpoint it
    was posted to, and the ``state`` it carries."""

    transaction_id: str
    state: str


@dataclass(frozen=True, slots=True)
class Consumed:
    """A challenge step 1 accepted and consumed: the audience (client identifier) and
    nonce the presentations must be bound to."""

    transaction_id: str
    client_id: str
    nonce: str


_TABLE = cast(Table, VpTransactionRow.__table__)
_COLUMNS = _TABLE.c
# The response endpoint's read of its transaction, precompiled (one indexed read of every
# column; the ORM's load of the same row costs several times the read itself).
_LOAD = HotQuery(
    select(*_TABLE.c).where(_COLUMNS.id == bindparam("transaction_id")), ("transaction_id",)
)
_DATETIMES: Final = frozenset(c.key for c in _TABLE.c if isinstance(c.type, DateTime))


def load_transaction(session: Session, transaction_id: str) -> VpTransactionRow | None:
    """The transaction ``transaction_id`` as a row of the session (``None``: no such
    transaction), as ``session.get`` would give it: the one already in the session, or one
    read by a precompiled SELECT and attached to the session unchanged (clean: the session
    flushes nothing for it), so that step 1's ``session.get`` and the decision's
    ``write_decision`` see the same object."""
    session.flush()  # a transaction added to this session and not yet written
    known = session.identity_map.get(identity_key(VpTransactionRow, transaction_id))
    if known is not None:
        return known
    found = _LOAD.first(session, transaction_id=transaction_id)
    if found is None:
        return None
    values = {
        name: stored_datetime(value) if name in _DATETIMES and value is not None else value
        for name, value in found._asdict().items()
    }
    row = VpTransactionRow(**values)
    make_transient_to_detached(row)  # as if loaded: no attribute is a change
    session.add(row)
    return row


# Step 1's consumption, precompiled: the response endpoint is a measured hot path
# (bench/verifier.py), and the statement is the same every time.
_CONSUME = HotStatement(
    update(_TABLE)
    .where(
        _COLUMNS.id == bindparam("transaction_id"),
        _COLUMNS.consumed_at.is_(None),
        _COLUMNS.expires_at > bindparam("now"),
    )
    .values(consumed_at=bindparam("consumed")),
    ("transaction_id", "now", "consumed"),
)


def consume_challenge(session: Session, challenge: Challenge, now: datetime) -> Consumed:
    """Pipeline step 1: the transaction exists, the response is for it (its ``state``), the
    request is unchanged (its hash), and its nonce is unexpired and unused — then consumed,
    by a conditional UPDATE (``… WHERE consumed_at IS NULL AND expires_at > now``) so two
    concurrent responses can never both pass.

    A challenge that fails here is not consumed (seed 002 §5); once consumed, whatever
    later steps decide, it cannot be used again.

    Raises :class:`VerificationDenied` with ``challenge_not_found``, ``aud_mismatch``
    (the state of another transaction), ``request_hash_mismatch``, ``challenge_consumed`` or
    ``challenge_expired``.
    """
    row = session.get(VpTransactionRow, challenge.transaction_id)
    if row is None:
        raise VerificationDenied(Reason.CHALLENGE_NOT_FOUND)
    if not hmac.compare_digest(row.state.encode(), challenge.state.encode()):
        other = session.scalar(
            select(VpTransactionRow.id).where(VpTransactionRow.state == challenge.state)
        )
        # A state of another transaction, posted to this one's response endpoint: the
        # response was made for another audience.
        raise VerificationDenied(
            Reason.AUD_MISMATCH if other is not None else Reason.CHALLENGE_NOT_FOUND
        )
    if not hmac.compare_digest(row.request_hash, request_hash(row)):
        raise VerificationDenied(Reason.REQUEST_HASH_MISMATCH)
    if row.consumed_at is not None:
        raise VerificationDenied(Reason.CHALLENGE_CONSUMED)
    if utc(row.expires_at) <= now:
        raise VerificationDenied(Reason.CHALLENGE_EXPIRED)
    if _CONSUME.execute(session, transaction_id=row.id, now=now, consumed=now) != 1:
        # Another response consumed it between the read and the update.
        raise VerificationDenied(Reason.CHALLENGE_CONSUMED)
    # The row in the session learns what the UPDATE wrote, without a read back (and
    # without being marked changed: nothing else is written for it).
    set_committed_value(row, "consumed_at", now)
    return Consumed(row.id, row.client_id, row.nonce)


# The decision, precompiled like step 1's consumption.
_DECIDE = HotStatement(
    update(_TABLE)
    .where(_COLUMNS.id == bindparam("transaction_id"))
    .values(
        decided_at=bindparam("at"),
        decision=bindparam("verdict"),
        reason=bindparam("why"),
        discarded=bindparam("dropped"),
        response_code_hash=bindparam("code_hash"),
        claims=bindparam("sealed"),
    ),
    ("transaction_id", "at", "verdict", "why", "dropped", "code_hash", "sealed"),
)
_DECISION: Final = ("decided_at", "decision", "reason", "discarded", "response_code_hash", "claims")


def write_decision(
    session: Session,
    row: VpTransactionRow,
    *,
    decided_at: datetime,
    decision: str,
    reason: str | None,
    discarded: str | None,
    response_code_hash: str | None,
    claims: str | None,
) -> None:
    """Write the decision of ``row`` (``decided_at``, ``decision``, ``reason``,
    ``discarded``, ``response_code_hash``, ``claims``) in one UPDATE, and let the row in the
    session know them without marking it changed (the session flushes nothing for it).

    Raises the database's errors (a response code hash already used: an integrity error).
    """
    _DECIDE.execute(
        session,
        transaction_id=row.id,
        at=decided_at,
        verdict=decision,
        why=reason,
        dropped=discarded,
        code_hash=response_code_hash,
        sealed=claims,
    )
    written = (decided_at, decision, reason, discarded, response_code_hash, claims)
    for name, value in zip(_DECISION, written, strict=True):
        set_committed_value(row, name, value)
