"""The OpenID4VP transaction table's operations: a request's row, its canonical hash, step 1
of the pipeline (the one-time challenge) and the decision record that consumes it.

A transaction is an authorization request a verifier made (OpenID4VP 1.0 §5): it holds the
one-time ``nonce`` the wallet binds its presentations to, the ``state`` the response names,
the SHA-256 of the canonical request, and — once the response came — the decision with its
precise reason.  The use cases that build on it are in ``verifier/service.py``.

The response endpoint reads its transaction (:func:`load_transaction`) and checks step 1
(:func:`check_challenge`) in a read unit of work, together with steps 2-10; the decision
is then written by one conditional UPDATE (:func:`record_decision`) that consumes the
challenge in the same statement — ``… WHERE consumed_at IS NULL AND expires_at > now`` —
so of two concurrent responses to one transaction exactly one is decided, and the write
transaction holds its lock (SQLite's one writer, PostgreSQL's row lock) only for that
statement and the decision's event.  On PostgreSQL the UPDATE and the event are one
statement in autocommit (:func:`record_decision_at_once`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, Protocol, cast

from sqlalchemy import DateTime, Table, bindparam, select, update
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.db import HotQuery, HotStatement, stored_datetime
from credit_commons.core.encoding import canonical_json, json_decode
from credit_commons.events import EventRows, recorded_with
from credit_commons.verifier.models import VpTransactionRow
from credit_commons.verifier.reasons import Reason, VerificationDenied

__all__ = [
    "ALLOW",
    "DENY",
    "Challenge",
    "Checked",
    "Transaction",
    "check_challenge",
    "hash_secret",
    "load_transaction",
    "record_decision",
    "record_decision_at_once",
    "request_hash",
]

ALLOW: Final = "allow"
DENY: Final = "deny"


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) a one-time secret (a response code) is stored as."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Requested(Protocol):
    """What :func:`request_hash` reads of a transaction: a :class:`VpTransactionRow` being
    made, or the :class:`Transaction` the response endpoint read."""

    @property
    def id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def client_id_prefix(self) -> str: ...
    @property
    def nonce(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def dcql(self) -> str: ...
    @property
    def enc_public(self) -> str | None: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def policy_owner(self) -> str | None: ...
    @property
    def policy_id(self) -> str | None: ...
    @property
    def policy_version(self) -> int | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def redirect_uri(self) -> str | None: ...
    @property
    def response_mode(self) -> str: ...
    @property
    def zk_predicates(self) -> str: ...
    @property
    def client_name(self) -> str | None: ...


def request_hash(row: Requested) -> str:
    """The SHA-256 (hex) of the transaction's canonical request: everything the wallet was
    asked under, as the canonical JSON of its members (``core.encoding.canonical_json``).

    Step 1 recomputes it from the row at the response: a row whose query, client, nonce,
    policy, response mode, encryption key or redirect was changed after the request went
    out no longer matches the request the wallet answered."""
    return hashlib.sha256(canonical_request(row)).hexdigest()


def canonical_request(row: Requested) -> bytes:
    """The RFC 8785 bytes :func:`request_hash` hashes: the object of the request's members.

    Written in parts — an object's canonical form is its members sorted by name, each
    ``"name":`` and its value's canonical form — so that the stored DCQL query and ZK
    predicates, the same text for many transactions, are parsed and canonicalised once per
    distinct text (:func:`_canonical_text`) rather than at every response, and the plain
    members around them in two calls; the tests compare it with ``canonical_json`` of the
    whole object."""
    # The members named before "dcql_query" (client_*) and those between it and
    # "zk_predicates" (every other one), each group canonicalised by one call.  Members
    # added since the first transactions (client_name, policy_owner, purpose) are hashed
    # only when set, so the hash of a request made before them stays what it was.
    before: dict[str, object] = {
        "client_id": row.client_id,
        "client_id_prefix": row.client_id_prefix,
    }
    if row.client_name is not None:
        before["client_name"] = row.client_name
    members: dict[str, object] = {
        "enc_public": row.enc_public,
        "expires_at": int(utc(row.expires_at).timestamp()),
        "id": row.id,
        "nonce": row.nonce,
        "policy_id": row.policy_id,
        "policy_version": row.policy_version,
        "redirect_uri": row.redirect_uri,
        "response_mode": row.response_mode,
        "state": row.state,
    }
    if row.policy_owner is not None:
        members["policy_owner"] = row.policy_owner
    if row.purpose is not None:
        members["purpose"] = row.purpose
    # An object's canonical form is "{", its members sorted by name and joined by ",", "}"
    # (the names here are ASCII without escapes: each is its own canonical form, and sorts
    # the same by code point as by UTF-16 unit, RFC 8785 §3.2.3), so the whole object is
    # the two groups' members with "dcql_query" between them and "zk_predicates" last.
    # Neither group is empty.
    return b"".join(
        (
            canonical_json(before)[:-1],
            b',"dcql_query":',
            _canonical_text(row.dcql),
            b",",
            canonical_json(members)[1:-1],
            b',"zk_predicates":',
            _canonical_text(row.zk_predicates),
            b"}",
        )
    )


# Stored texts at most this long are cached (256 of them: at most a few MiB held); a longer
# one, which a verifier may send up to the body limit, is canonicalised every time.
_CACHED_TEXT: Final = 16 * 1024


def _canonical_text(text: str) -> bytes:
    # The canonical bytes of a stored JSON text.  A text that is no I-JSON raises every
    # time (lru_cache keeps no exception).
    if len(text) > _CACHED_TEXT:
        return canonical_json(json_decode(text))
    return _cached_canonical_text(text)


@lru_cache(maxsize=256)
def _cached_canonical_text(text: str) -> bytes:
    return canonical_json(json_decode(text))  # bytes: immutable, safe to share


@dataclass(frozen=True, slots=True)
class Transaction:
    """A transaction as the response endpoint reads it (:func:`load_transaction`): what
    its request asked (hashed by :func:`request_hash`), its expiry, and whether a response
    has consumed it.  A value, not a row of any session: the endpoint reads it in one unit
    of work and decides in another."""

    id: str
    owner: str
    client_id: str
    client_id_prefix: str
    nonce: str
    state: str
    request_hash: str
    dcql: str
    policy_owner: str | None
    policy_id: str | None
    policy_version: int | None
    purpose: str | None
    zk_predicates: str
    response_mode: str
    redirect_uri: str | None
    client_name: str | None
    enc_public: str | None
    enc_key: str | None
    expires_at: datetime
    consumed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Challenge:
    """What step 1 checks a response against: the transaction whose response endpoint it
    was posted to, and the ``state`` it carries."""

    transaction_id: str
    state: str


@dataclass(frozen=True, slots=True)
class Checked:
    """A challenge step 1 accepted: the audience (client identifier) and nonce the
    presentations must be bound to, and the request hash it verified (the decision
    consumes the challenge only while the row still has it)."""

    transaction_id: str
    client_id: str
    nonce: str
    request_hash: str


_TABLE = cast(Table, VpTransactionRow.__table__)
_COLUMNS = _TABLE.c
_FIELDS: Final = tuple(f.name for f in fields(Transaction))
# The response endpoint's read of its transaction, precompiled (one indexed read of the
# columns it needs; the ORM's load of the same row costs several times the read itself).
_LOAD = HotQuery(
    select(*(_COLUMNS[name] for name in _FIELDS)).where(_COLUMNS.id == bindparam("transaction_id")),
    ("transaction_id",),
)
_DATETIMES: Final = frozenset(name for name in _FIELDS if isinstance(_COLUMNS[name].type, DateTime))


def load_transaction(session: Session, transaction_id: str) -> Transaction | None:
    """The transaction ``transaction_id`` (``None``: no such transaction), by one
    precompiled SELECT."""
    found = _LOAD.rows(session, transaction_id=transaction_id)
    if not found:
        return None
    values: dict[str, Any] = {
        name: stored_datetime(value) if name in _DATETIMES and value is not None else value
        for name, value in zip(_FIELDS, found[0], strict=True)
    }
    return Transaction(**values)


def check_challenge(
    session: Session, row: Transaction | None, challenge: Challenge, now: datetime
) -> Checked:
    """Pipeline step 1: the transaction exists, the response is for it (its ``state``), the
    request is unchanged (its hash), and its nonce is unexpired and unused at ``now``.

    Nothing is written: the challenge is consumed by the decision (:func:`record_decision`),
    whose UPDATE repeats the conditions that can change meanwhile (unused, unexpired, the
    same request hash), so a challenge refused here is never consumed and a challenge
    consumed by a concurrent response meanwhile decides nothing.

    Raises :class:`VerificationDenied` with ``challenge_not_found``, ``aud_mismatch``
    (the state of another transaction), ``request_hash_mismatch``, ``challenge_consumed`` or
    ``challenge_expired``.
    """
    if row is None:
        raise VerificationDenied(Reason.CHALLENGE_NOT_FOUND)
    if not hmac.compare_digest(row.state.encode(), challenge.state.encode()):
        other = session.scalar(select(_COLUMNS.id).where(_COLUMNS.state == challenge.state))
        # A state of another transaction, posted to this one's response endpoint: the
        # response was made for another audience.
        raise VerificationDenied(
            Reason.AUD_MISMATCH if other is not None else Reason.CHALLENGE_NOT_FOUND
        )
    if not hmac.compare_digest(row.request_hash, request_hash(row)):
        raise VerificationDenied(Reason.REQUEST_HASH_MISMATCH)
    if row.consumed_at is not None:
        raise VerificationDenied(Reason.CHALLENGE_CONSUMED)
    if row.expires_at <= now:
        raise VerificationDenied(Reason.CHALLENGE_EXPIRED)
    return Checked(row.id, row.client_id, row.nonce, row.request_hash)


# The decision, and with it the challenge's consumption: one precompiled UPDATE whose
# conditions are step 1's that can change after the read (a concurrent response consumed
# the challenge, or the row was altered).  ``now`` is the consumption's, the decision's and
# the expiry check's instant.
_DECISION = (
    update(_TABLE)
    .where(
        _COLUMNS.id == bindparam("transaction_id"),
        _COLUMNS.consumed_at.is_(None),
        _COLUMNS.expires_at > bindparam("now"),
        _COLUMNS.request_hash == bindparam("checked_hash"),
    )
    .values(
        consumed_at=bindparam("now"),
        decided_at=bindparam("now"),
        decision=bindparam("verdict"),
        reason=bindparam("why"),
        discarded=bindparam("dropped"),
        response_code_hash=bindparam("code_hash"),
        claims=bindparam("sealed"),
    )
)
_DECIDE = HotStatement(
    _DECISION,
    ("transaction_id", "now", "checked_hash", "verdict", "why", "dropped", "code_hash", "sealed"),
)
# PostgreSQL only: the same UPDATE and the decision's event with its log entry, written by
# one statement (events.recorded_with): all three or none.
_DECIDE_RECORDED = recorded_with(_DECISION.returning(_COLUMNS.id))


def record_decision(
    session: Session,
    checked: Checked,
    *,
    now: datetime,
    decision: str,
    reason: str | None,
    discarded: str | None,
    response_code_hash: str | None,
    claims: str | None,
) -> bool:
    """Consume the challenge step 1 ``checked`` at ``now`` and write the decision
    (``decision``, ``reason``, ``discarded``, ``response_code_hash``, ``claims``) in one
    conditional UPDATE: only while the challenge is unused, unexpired at ``now`` and the
    request hash is still the one checked.  Returns whether it was written — ``False``: a
    concurrent response consumed the challenge first (or the row changed), and this
    response decides nothing.

    Raises the database's errors (a response code hash already used: an integrity error).
    """
    written = _DECIDE.execute(
        session,
        **_decision_params(
            checked,
            now=now,
            decision=decision,
            reason=reason,
            discarded=discarded,
            response_code_hash=response_code_hash,
            claims=claims,
        ),
    )
    return written == 1


def _decision_params(
    checked: Checked,
    *,
    now: datetime,
    decision: str,
    reason: str | None,
    discarded: str | None,
    response_code_hash: str | None,
    claims: str | None,
) -> dict[str, object]:
    # The decision UPDATE's parameters (_DECISION), for both ways of running it.
    return {
        "transaction_id": checked.transaction_id,
        "now": now,
        "checked_hash": checked.request_hash,
        "verdict": decision,
        "why": reason,
        "dropped": discarded,
        "code_hash": response_code_hash,
        "sealed": claims,
    }


def record_decision_at_once(
    session: Session,
    checked: Checked,
    event: EventRows,
    *,
    now: datetime,
    decision: str,
    reason: str | None,
    discarded: str | None,
    response_code_hash: str | None,
    claims: str | None,
) -> bool:
    """PostgreSQL only: :func:`record_decision` and the decision's one ``event`` (with its
    log entry) in one statement — data-modifying CTEs, atomic as that statement — run in
    ``session``, whose statements commit one by one (``core.db_autocommit``): one round
    trip where a unit of work takes five (BEGIN, the UPDATE, two INSERTs, COMMIT).
    Returns whether the decision was written, and with it the event; ``False``: the
    challenge was consumed first (or the row changed), and nothing was written.

    Raises ``ValueError`` unless ``event`` holds exactly one event, and the database's
    errors (a response code hash already used: an integrity error); a connection lost under
    the statement leaves it unknown whether the decision and its event were written
    (together).
    """
    if len(event.events) != 1:
        raise ValueError("the decision is written with exactly one event")
    values = {f"event_{name}": value for name, value in event.events[0].items()}
    found = _DECIDE_RECORDED.first(
        session,
        **values,
        entry=event.entries[0]["entry"],
        **_decision_params(
            checked,
            now=now,
            decision=decision,
            reason=reason,
            discarded=discarded,
            response_code_hash=response_code_hash,
            claims=claims,
        ),
    )
    return found is not None
