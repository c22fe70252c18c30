"""Scoring on a full node (issue 20; docs/federation.md, "Scoring on a node"): the node
scores the followed platform's reputation events itself, with the same pure reputation
core the platform runs (``reputation.scorer_sparse`` over the scorer's inputs, and
``reputation.scores_inputs.members_of_memberships`` for memberships), over what it mirrored:

* the **checkpoint**: the newest mirrored one (its root checked against the mirrored tree
  when it was stored); as of the time its log-signed message says the platform made it
  (``at``), as the platform scores it — the UTC day, and the rule set in effect then;
* the **events**: each ``events.*`` message below the checkpoint's size whose entry is the
  mirrored leaf at its index, its blob (the signed vouch or report, by CID) re-checked: the
  CID, the sender's signature, and the SHA-256 of both DIDs the spine event states;
* the **memberships**: each ``members.recorded`` message below the checkpoint, with the
  platform's member document (``GET /v1/reputation/members/{event_id}``, with the node's
  service token, scope ``members:read``) mirrored once and checked against the spine event
  (the DID's SHA-256, the KYC flag, the credential's SHA-256, the day); revocations,
  suspensions and reinstatements from the ``members.revoked`` / ``members.reinstated``
  messages below the checkpoint; the DIDs excluded by ``members.excluded`` messages.  The
  membership of a DID excluded anywhere in the mirror is neither fetched nor kept (the
  platform no longer serves it; a document mirrored before is deleted), and one excluded
  below the checkpoint needs none (the scorer leaves an excluded DID's membership out).  A
  document that cannot be fetched or does not match is tried again with back-off; scoring
  refuses meanwhile, naming the event;
* the **rule set**: the version of the default rule set in effect at the checkpoint's
  time among those the node mirrored, every mirrored version's registry token verified
  again under the registry's keys and its hash the mirrored one — a rule set the node
  cannot verify, or none in effect, and the node refuses to score (:class:`ScoringRefused`).

**Complete inputs only.**  The checkpoints stream is mirrored apart from (and during a
catch-up, before) the events and members streams, so the node holds the newest checkpoint
before the messages below it.  The node therefore knows which leaves below the checkpoint
are reputation spine events: it reads each leaf's entry once from the platform's entry
bundles and keeps the notes (node/scoring_notes.py; a restart reads no entry again).  While
any of those below the checkpoint is not mirrored, it refuses (``inputs_pending``, with the
counts and the first missing leaf) rather than serve a partial score as the checkpoint's,
and :meth:`NodeScorer.state` names the missing leaves (``commons node repair`` fetches
them).

The records (RFC 8785 bytes, hashed as the platform hashes them) are kept in memory for
the latest scored checkpoint, with the key of what they were scored from (the checkpoint,
the day, the mirrored rule-set versions, the input messages and member documents), and
recomputed at each start from the mirror.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.core.encoding import (
    JsonObject,
    canonical_json,
    sha256_hex,
)
from credit_commons.core.errors import CommonsError, NotFoundError
from credit_commons.ledger import NodeId, leaf_hash
from credit_commons.node import store
from credit_commons.node.messages import checkpoint_at
from credit_commons.node.mirror import Mirror, issuer_key_resolver
from credit_commons.node.models import NodeMemberRow, NodeMessageRow, NodeRuleSetRow
from credit_commons.node.scoring_inputs import (
    EVENTS_STREAM,
    MEMBERS_STREAM,
    ScoringInput,
    ScoringRefused,
    did_sha,
    excluded_dids,
    member_row,
    memberships_of,
    scoring_event,
    stored_payload,
)
from credit_commons.node.scoring_notes import (
    NONE_MISSING,
    MissingInputs,
    missing_inputs,
    note_spine_leaves,
)
from credit_commons.reputation import (
    DEFAULT_RULE_SET_ID,
    HIDDEN,
    RuleSet,
    did_sha256,
    members_of_memberships,
    rule_set_hash,
    rule_set_kid,
    score_contexts,
    select_active,
    verify_rule_set,
)

__all__ = [
    "NODE_SCORE_FORMAT",
    "NodeScoreNotFound",
    "NodeScorer",
    "NodeScores",
    "ScoringRefused",
]

log = logging.getLogger("credit_commons.node")

NODE_SCORE_FORMAT: Final = "credit-commons-node-score/v1"
_EVENTS, _MEMBERS = EVENTS_STREAM, MEMBERS_STREAM
_CHECKPOINTS = "COMMONS_CHECKPOINTS"
_RULES_JWKS = "rules_jwks"


class NodeScoreNotFound(NotFoundError):
    """No score for that DID and context on this node (yet)."""

    code = "node.score_not_found"
    title = "Not found"


@dataclass(frozen=True)
class NodeScores:
    """The records of one scored checkpoint: ``(did, ctx)`` → the record's RFC 8785 bytes."""

    size: int
    root: bytes
    as_of: date
    rule_set: RuleSet
    records: Mapping[tuple[str, str], bytes]
    events: int
    members: int

    def view(self, did: str, ctx: str) -> JsonObject:
        """The node's answer for one record: its hash and its fields but the factors,
        score, tier and diversity (which the platform, too, shows only to the subject)."""
        found = self.records.get((did, ctx))
        if found is None:
            raise NodeScoreNotFound("no such score")
        record = json.loads(found)
        hidden = {"factors", *HIDDEN}
        return {
            "format": NODE_SCORE_FORMAT,
            "record": {k: v for k, v in record.items() if k not in hidden},
            "recordHash": sha256_hex(found),
            "asOf": self.as_of.isoformat(),
            "checkpoint": {"size": self.size, "root": self.root.hex()},
            "ruleSet": {
                "id": self.rule_set.id,
                "version": self.rule_set.version,
                "hash": self.rule_set.hash,
            },
        }


class NodeScorer:
    """Scores the mirror of one followed platform (see the module)."""

    def __init__(
        self,
        mirror: Mirror,
        *,
        member_token: Callable[[], str],
        interval: float = 1.0,
        backoff: tuple[float, float] = (5.0, 600.0),
    ) -> None:
        """``member_token()``: a service token of the node's own key with scope
        ``members:read`` for the followed platform; ``backoff``: the first and the longest
        wait (seconds) before a member document that failed is asked for again."""
        self.mirror, self.interval = mirror, interval
        self._member_token = member_token
        self._backoff = backoff
        # event id -> (failures in a row, when to try again, why it failed)
        self._failed: dict[str, tuple[int, datetime, str]] = {}
        # The memberships of DIDs excluded in the mirror: never fetched (see the module).
        self._gone: set[str] = set()
        self._scores: NodeScores | None = None
        self._key: tuple[object, ...] | None = None
        # The noted leaves below the newest checkpoint the mirror lacked at the last pass;
        # None when that pass could not read them (unknown, not the pass before's).
        self.missing: MissingInputs | None = NONE_MISSING
        self.refused: ScoringRefused | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what it serves --------------------------------------------------------------------

    def scores(self) -> NodeScores | None:
        """The latest scored checkpoint's records, if any."""
        with self._lock:
            return self._scores

    def view(self, did: str, ctx: str) -> JsonObject:
        """One record as :meth:`NodeScores.view` serves it.  Raises
        :class:`ScoringRefused` (the last pass refused and nothing was scored before) and
        :class:`NodeScoreNotFound`."""
        scores = self.scores()
        if scores is None:
            if self.refused is not None:
                raise self.refused
            raise NodeScoreNotFound("the node has scored no checkpoint yet")
        return scores.view(did, ctx)

    def state(self) -> JsonObject:
        """What ``GET /v1/node`` says of scoring."""
        scores = self.scores()
        return {
            "checkpoint": None if scores is None else scores.size,
            "as_of": None if scores is None else scores.as_of.isoformat(),
            "rule_set": None
            if scores is None
            else {"id": scores.rule_set.id, "version": scores.rule_set.version},
            "records": 0 if scores is None else len(scores.records),
            "refused": None if self.refused is None else self.refused.reason,
            # The leaves whose messages the newest checkpoint's scoring waits for (a message
            # the mirror dropped or the stream lost: ``commons node repair`` fetches them).
            # null when the last pass could not read them (the platform was unreachable).
            "missing": None if self.missing is None else self.missing.to_json(),
        }

    # -- in a thread of its own ------------------------------------------------------------

    def start(self) -> None:
        """Score each new mirrored checkpoint, on a thread of its own, until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="node-scorer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.mirror_members()
            except Exception as exc:  # the database: scoring says what is missing
                log.warning("node: member documents will be retried (%s)", type(exc).__name__)
            try:
                self.score()
            except ScoringRefused:
                pass  # logged once by score(); the next checkpoint or rule set may do
            except Exception as exc:  # a transient failure: the platform, the database
                log.warning("node: scoring will be retried (%s)", type(exc).__name__)
            self._stop.wait(self.interval)

    # -- memberships -----------------------------------------------------------------------

    def mirror_members(self) -> int:
        """Fetch, check and store the member document of each mirrored
        ``members.recorded`` message the node does not hold yet, but of an excluded DID
        (whose mirrored documents it deletes); how many it stored.  A document that cannot
        be fetched or does not match its spine event is not stored (counted
        ``scoring.member_failed`` / ``scoring.member_mismatch``) and is asked for again
        after a back-off that doubles with each failure (:meth:`member_failures`)."""
        with transaction(self.mirror.sessions) as session:
            inputs = self._inputs(session, _MEMBERS, None)
            excluded = excluded_dids(inputs)
            for kept in list(session.scalars(select(NodeMemberRow))):
                if did_sha256(kept.did) in excluded:
                    session.delete(kept)
            held = set(session.scalars(select(NodeMemberRow.event_id)))
        recorded = [m for m in inputs if m.subject == "members.recorded"]
        self._gone = {str(m.event.get("id")) for m in recorded if did_sha(m) in excluded}
        wanted = [m for m in recorded if did_sha(m) not in excluded]
        stored = 0
        for item in wanted:
            event_id = str(item.event.get("id"))
            if event_id in held:
                continue
            failed = self._failed.get(event_id)
            if failed is not None and self.mirror.clock.now() < failed[1]:
                continue
            try:
                document = self.mirror.platform.member(event_id, self._member_token)
            except CommonsError as e:
                self._failure(event_id, e.code, e.detail)
                continue
            row = member_row(item.event, document, self.mirror.clock.now())
            if row is None:
                self._failure(event_id, "scoring.member_mismatch", "not its spine event")
                continue
            with transaction(self.mirror.sessions) as session:
                if session.get(NodeMemberRow, event_id) is None:
                    session.add(row)
                    stored += 1
            self._failed.pop(event_id, None)
        return stored

    def member_failures(self) -> dict[str, str]:
        """The member documents that failed and are waiting to be asked for again:
        event id → why (a problem code and its detail)."""
        return {event_id: why for event_id, (_, _, why) in self._failed.items()}

    def _failure(self, event_id: str, code: str, detail: str) -> None:
        count = self._failed[event_id][0] + 1 if event_id in self._failed else 1
        first, longest = self._backoff
        wait = min(longest, first * 2 ** min(count - 1, 30))
        again = self.mirror.clock.now() + timedelta(seconds=wait)
        self._failed[event_id] = (count, again, f"{code}: {detail}"[:200])
        with transaction(self.mirror.sessions) as session:
            mismatch = code == "scoring.member_mismatch"
            store.count(session, code if mismatch else "scoring.member_failed")
        if count == 1:  # once per document's failure streak
            log.warning(
                "node: a member document failed; asked for again with back-off",
                extra={"fields": {"event": event_id, "code": code}},
            )

    # -- scoring ---------------------------------------------------------------------------

    def score(self) -> NodeScores | None:
        """Score the newest mirrored checkpoint unless it is scored already; ``None`` before
        the first checkpoint.  Raises :class:`ScoringRefused`."""
        try:
            scored = self._score()
        except ScoringRefused as refused:
            if self.refused is None or self.refused.reason != refused.reason:
                log.warning(
                    "node: refuses to score",
                    extra={"fields": {"reason": refused.reason, "detail": refused.detail}},
                )
            self.refused = refused
            raise
        self.refused = None
        return scored

    def _key_of(self, session: Session, size: int, at: datetime) -> tuple[object, ...]:
        # What a score is computed from, read without parsing a message.
        def positions(stream: str) -> tuple[int, ...]:
            query = select(NodeMessageRow.position).where(
                NodeMessageRow.stream == stream, NodeMessageRow.position < size
            )
            return tuple(session.scalars(query.order_by(NodeMessageRow.position)))

        rules = tuple(
            (str(r), int(v), str(h))
            for r, v, h in session.execute(
                select(NodeRuleSetRow.rule_set, NodeRuleSetRow.version, NodeRuleSetRow.hash)
                .where(NodeRuleSetRow.rule_set == DEFAULT_RULE_SET_ID)
                .order_by(NodeRuleSetRow.version)
            )
        )
        documents = tuple(
            session.scalars(select(NodeMemberRow.event_id).order_by(NodeMemberRow.event_id))
        )
        return (size, at.date(), rules, positions(_EVENTS), positions(_MEMBERS), documents)

    def _score(self) -> NodeScores | None:
        try:
            with transaction(self.mirror.sessions) as session:
                latest = store.latest_checkpoint(session)
                if latest is None:
                    return None
                size, root = int(latest.size), bytes(latest.root_hash)
                message = session.get(NodeMessageRow, (_CHECKPOINTS, size))
                said = None if message is None else stored_payload(message.body).get("at")
                made = checkpoint_at(said) if isinstance(said, str) else None
        except Exception:
            self.missing = None  # what is missing below the newest checkpoint: unknown
            raise
        if made is None:
            self.missing = None
            raise ScoringRefused(
                "checkpoint_time_unknown",
                f"the message of checkpoint {size} does not say when the platform made it",
            )
        missing = self._find_missing(size)
        if missing:
            lacking = missing.counts[_EVENTS], missing.counts[_MEMBERS]
            first = min(missing.first[_EVENTS][:1] + missing.first[_MEMBERS][:1])
            raise ScoringRefused(
                "inputs_pending",
                f"{lacking[0]} reputation event(s) and {lacking[1]} membership message(s) "
                f"below checkpoint {size} are not mirrored yet (the first: leaf {first})",
            )
        with transaction(self.mirror.sessions) as session:
            at = made
            key = self._key_of(session, size, at)
            current = self.scores()
            if current is not None and key == self._key:
                return current
            rule_set = self._rule_set(session, at)
            events = self._inputs(session, _EVENTS, size)
            members = self._inputs(session, _MEMBERS, size)
            self._check_leaves(session, [*events, *members])
            blobs = {
                cid: store.blob(session, cid)
                for cid in (str(e.event["details"]["cid"]) for e in events)
            }
            recorded = {str(m.event["id"]) for m in members}
            documents = {
                row.event_id: row
                for row in session.scalars(select(NodeMemberRow))
                if row.event_id in recorded
            }
        as_of = at.date()
        scoring_events = [scoring_event(e, blobs) for e in events]
        excluded_later = "its DID is excluded after this checkpoint; the next is scored"
        why = dict.fromkeys(self._gone, excluded_later)
        why.update(self.member_failures())
        memberships, excluded_sha = memberships_of(members, documents, why)
        dids = {m.did for m in memberships}
        for e in scoring_events:
            dids.update((e.sender, e.subject))
        excluded = frozenset(d for d in dids if did_sha256(d) in excluded_sha)
        scoring_members = members_of_memberships(memberships, rule_set)
        scored = score_contexts(scoring_events, scoring_members, excluded, rule_set, as_of=as_of)
        records = {key: record.to_jcs() for key, record in scored.items()}
        scores = NodeScores(
            size=size,
            root=root,
            as_of=as_of,
            rule_set=rule_set,
            records=records,
            events=len(scoring_events),
            members=len(scoring_members),
        )
        with self._lock:
            self._scores, self._key = scores, key
        log.info(
            "node: scored checkpoint %d as of %s: %d records", size, as_of.isoformat(), len(records)
        )
        return scores

    def _find_missing(self, size: int) -> MissingInputs:
        # The noted leaves below ``size`` the mirror lacks, noting the new ones first.  When
        # that fails (the platform or the database unreachable) they are unknown until a
        # pass reads them again, not the previous pass's shown as current.  The mirror
        # only adds messages, so none is missing when the scoring's own unit of work reads
        # the inputs if none was here.
        try:
            note_spine_leaves(self.mirror, size)
            with transaction(self.mirror.sessions) as session:
                missing = missing_inputs(session, size)
        except Exception:
            self.missing = None
            raise
        self.missing = missing
        return missing

    def _inputs(self, session: Session, stream: str, size: int | None) -> list[ScoringInput]:
        query = select(NodeMessageRow).where(NodeMessageRow.stream == stream)
        if size is not None:
            query = query.where(NodeMessageRow.position < size)
        out = []
        for row in session.scalars(query.order_by(NodeMessageRow.position)):
            payload = stored_payload(row.body)
            event, entry = payload.get("event"), payload.get("entry")
            if not isinstance(event, dict) or not isinstance(entry, str):
                raise ScoringRefused("input", "a mirrored message is not an event message")
            out.append(ScoringInput(int(row.position), row.subject, event, entry.encode("utf-8")))
        return out

    @staticmethod
    def _check_leaves(session: Session, inputs: Sequence[ScoringInput]) -> None:
        # Each input's entry is the mirrored leaf at its index: what the checkpoint covers.
        if not inputs:
            return
        found = store.TreeSource(session).subtree_roots([NodeId(0, i.position) for i in inputs])
        for item, leaf in zip(inputs, found, strict=True):
            if bytes(leaf) != bytes(leaf_hash(item.entry)):
                raise ScoringRefused("input", f"the entry at {item.position} is not the leaf")

    def _rule_set(self, session: Session, at: datetime) -> RuleSet:
        rows = list(
            session.scalars(
                select(NodeRuleSetRow).where(NodeRuleSetRow.rule_set == DEFAULT_RULE_SET_ID)
            )
        )
        if not rows:
            raise ScoringRefused("no_rule_set", "the node has mirrored no rule set")
        jwks = self._registry_keys(session, [row.token for row in rows])
        verified = []
        for row in rows:
            try:
                key = issuer_key_resolver(jwks)({"kid": rule_set_kid(row.token)})
                found = verify_rule_set(row.token, key).rule_set
            except CommonsError as e:
                raise ScoringRefused(
                    "rule_set_unverified",
                    f"rule set {row.rule_set} v{row.version} does not verify ({e.code})",
                ) from e
            if (found.id, found.version, rule_set_hash(found)) != (
                row.rule_set,
                row.version,
                row.hash,
            ):
                raise ScoringRefused(
                    "rule_set_unverified",
                    f"rule set {row.rule_set} v{row.version} is not the one mirrored",
                )
            verified.append(found)
        try:
            return select_active(verified, at)
        except CommonsError as e:
            raise ScoringRefused("no_rule_set", "no mirrored rule set is in effect") from e

    def _registry_keys(self, session: Session, tokens: Sequence[str]) -> Mapping[str, Any]:
        # The registry's keys, fetched from the platform once and kept; again when a
        # token names a key not among them (a rotation).
        kept = store.pins(session).get(_RULES_JWKS)
        jwks: Mapping[str, Any] = json.loads(kept) if kept else {"keys": []}
        kids = {str(k.get("kid")) for k in jwks.get("keys", []) if isinstance(k, dict)}
        try:
            needed = {rule_set_kid(t) for t in tokens}
        except CommonsError as e:
            raise ScoringRefused("rule_set_unverified", "a mirrored token is malformed") from e
        if needed <= kids:
            return jwks
        fetched = self.mirror.platform.rule_set_keys()
        now = self.mirror.clock.now()
        store.set_value(session, _RULES_JWKS, canonical_json(fetched).decode(), now)
        return fetched
