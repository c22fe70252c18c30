"""The mirror: what the node does with each message once it verified (docs/federation.md,
"Full node").

* first use: the followed platform's log origin and key are pinned (``node_pins``); a later
  start that finds another key, origin or platform refuses to run (:class:`PinMismatch`);
* ``checkpoints.*``: the log's leaves up to the checkpoint's size are fetched as tlog-tiles
  entry bundles and appended to the mirrored tree in the same unit of work that checks the
  tree's root against the signed checkpoint's.  The mirrored tree only ever grows, so an
  equal root is consistency with every checkpoint mirrored before; a different root (or an
  earlier size whose root is not the mirror's) is a fork: the checkpoint is refused and
  kept in ``node_forks``, the leaves are not stored.  A committee line on the note is kept
  only when it verifies under a committee key the operator pinned
  (``ledger.sort_committee_lines``; any other is removed and counted
  ``dropped.committee``), and a checkpoint already mirrored that comes again with a
  verified committee line (the platform's ``checkpoint:<key>:<size>:committee`` message) is
  served with it from then on, when its root is the mirrored one;
* ``events.*``: the blob the event names by CID is fetched and stored only when the CID is
  the bytes' (else the message is dropped, reason ``blob``); once the leaf at the event's
  index is mirrored, the entry must be that leaf;
* ``revocations.*``: every status list the node mirrors is fetched again, its signature
  checked with the issuer's keys and its ``sub`` with its URL, and replaced;
* ``rules.*``: the rule set version the message names is fetched with its registry token,
  verified under the platform's registry keys (``GET /v1/rules/jwks``) and its hash checked
  against the message's before it is stored (else dropped, reason ``rules``);
* the bus (``identity.*``, ``consent.*``, ``credential.*``): stored as verified messages.

A transient failure (the platform unreachable, the database busy) raises: the caller does
not acknowledge the message, and JetStream delivers it again.  A message already stored is
a duplicate and changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from credit_commons.core.clock import Clock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, canonical_json
from credit_commons.core.errors import CommonsError
from credit_commons.core.net import FetchFailed, OutboundFetcher
from credit_commons.formats.tlog_tiles import TILE_WIDTH
from credit_commons.keys import PublicKey, public_key_from_jwk
from credit_commons.ledger import (
    CommitteeVerifier,
    TreeRangeInvalid,
    leaf_hash,
    sort_committee_lines,
)
from credit_commons.node import store
from credit_commons.node.messages import (
    Dropped,
    Pins,
    Received,
    Verified,
    receive,
    verify_covered,
    verify_message,
    verify_signed,
)
from credit_commons.node.platform import Platform
from credit_commons.reputation import blob_cid, rule_set_hash, rule_set_kid, verify_rule_set
from credit_commons.verifier import StatusListFetcher, StatusListRejected

__all__ = ["Mirror", "StoredStatusLists"]

log = logging.getLogger("credit_commons.node")

_EVENTS, _REVOCATIONS, _RULES = "COMMONS_EVENTS", "COMMONS_REVOCATIONS", "COMMONS_RULES"
_CHECKPOINTS = "COMMONS_CHECKPOINTS"


@dataclass(frozen=True)
class _Prepared:
    """A verified message with what it needs fetched: its blob, its rule set."""

    verified: Verified
    blob: tuple[str, bytes] | None
    rules: tuple[str, int, str, str] | None


def _mirrored_leaves(
    session: Session,
    prepared: Sequence[_Prepared | Verified | Dropped],
    size: int,
    checked_by: Mapping[int, bytes],
) -> dict[int, bytes]:
    """The mirrored leaf hashes at the positions of a batch's fresh messages, in one read:
    those below ``size`` that were not already checked by their leaf (``checked_by``, read
    before; a mirrored leaf never changes)."""
    wanted = [p.verified.position for p in prepared if isinstance(p, _Prepared)]
    mirrored = [position for position in wanted if position < size and position not in checked_by]
    found = store.TreeSource(session).leaves(mirrored)
    if len(found) != len(set(mirrored)):
        raise TreeRangeInvalid("a leaf below the mirrored size is not mirrored")
    return found


class StoredStatusLists(OutboundFetcher):
    """An :class:`OutboundFetcher` that answers from tokens at hand, never the network, so
    the verifier's :class:`StatusListFetcher` checks a mirrored list exactly as a fetched
    one (signature, ``sub``, ``iat``, expiry)."""

    def __init__(self, tokens: Mapping[str, tuple[bytes, str]]) -> None:  # no client
        self._tokens = dict(tokens)

    def close(self) -> None:
        return None

    def get_bytes(
        self, url: str, *, accept: str = "*/*", headers: Mapping[str, str] | None = None
    ) -> tuple[bytes, httpx.Headers]:
        del accept, headers
        found = self._tokens.get(url)
        if found is None:
            raise FetchFailed("the node mirrors no such status list")
        return found[0], httpx.Headers({"content-type": found[1]})


def issuer_key_resolver(jwks: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], PublicKey]:
    """A key resolver over a JWKS: the key whose ``kid`` the header names."""
    keys = {str(k.get("kid")): k for k in jwks.get("keys", []) if isinstance(k, dict)}

    def resolve(header: Mapping[str, Any]) -> PublicKey:
        jwk = keys.get(str(header.get("kid")))
        if jwk is None:
            raise StatusListRejected("the status list's key is not one of the issuer's")
        return public_key_from_jwk(jwk)

    return resolve


class Mirror:
    """Verifies and stores messages from one followed platform; ``on_drop`` is called with
    (stream, reason) after each dropped message is counted (the quotas' hook)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        platform: Platform,
        clock: Clock,
        *,
        on_drop: store.DropHook | None = None,
        committee_keys: Sequence[CommitteeVerifier] = (),
    ) -> None:
        self.sessions, self.platform, self.clock = sessions, platform, clock
        self.on_drop = on_drop
        self.committee_keys = tuple(committee_keys)
        self._pins: Pins | None = None

    @property
    def pins(self) -> Pins:
        if self._pins is None:
            raise RuntimeError("call start() first")
        return self._pins

    def start(self) -> Pins:
        """Pin the platform, its log's origin and key, and its issuer on first use (or
        check them against the pins); refresh the issuer's keys."""
        origin, vkey = self.platform.log_key()
        Pins(origin, vkey).note_verifier  # noqa: B018 - a malformed vkey raises here
        metadata = self.platform.issuer_metadata()
        issuer, jwks = metadata.get("issuer"), metadata.get("jwks")
        if not isinstance(issuer, str) or not isinstance(jwks, dict):
            raise StatusListRejected("the platform's issuer metadata lacks issuer or jwks")
        with transaction(self.sessions) as session:
            now = self.clock.now()
            store.pin(session, "platform", self.platform.base, now)
            store.pin(session, "origin", origin, now)
            store.pin(session, "log_vkey", vkey, now)
            store.pin(session, "issuer", issuer, now)
            store.set_value(session, "issuer_jwks", canonical_json(jwks).decode(), now)
        self._pins = Pins(origin, vkey)
        return self._pins

    # -- messages --------------------------------------------------------------------------

    def accept(self, body: bytes, subject: str, stream: str) -> str:
        """Verify and store one message: ``"stored"``, ``"duplicate"`` or ``"dropped"``.
        Raises on a transient failure (the message is to be delivered again)."""
        return self.accept_batch(stream, [(body, subject)])[0]

    def accept_batch(
        self,
        stream: str,
        items: Sequence[tuple[bytes, str]],
        *,
        cursor: tuple[str, int] | None = None,
    ) -> list[str]:
        """Verify and store messages of ``stream`` (body, subject), in order, in one unit of
        work (checkpoints one by one): each ``"stored"``, ``"duplicate"`` or ``"dropped"``.
        ``cursor`` (a counter's name and value) is written in the same unit of work.
        Raises on a transient failure: nothing of the batch is stored."""
        if stream == _CHECKPOINTS:
            outcomes = []
            for body, subject in items:
                outcomes.append(self._one_checkpoint(body, subject, stream))
            if cursor is not None:
                with transaction(self.sessions) as session:
                    store.set_counter(session, cursor[0], cursor[1])
            return outcomes
        checked, held, paths, covered = self._check(stream, items)
        prepared = [
            v if isinstance(v, Dropped) or v.position in held else self._prepare(v) for v in checked
        ]
        revocation = any(isinstance(p, _Prepared) for p in prepared) and stream == _REVOCATIONS
        tokens = self._fetch_status_lists() if revocation else {}
        outcomes, drops = [], []
        with transaction(self.sessions) as session:
            now, size = self.clock.now(), store.tree_size(session)
            fresh = [p.verified.position for p in prepared if isinstance(p, _Prepared)]
            held = store.held_positions(session, stream, fresh)  # a racing writer's
            rows, blobs = [], []
            leaves = _mirrored_leaves(session, prepared, size, covered)
            for item in prepared:
                if isinstance(item, Dropped):
                    drops.append(item.reason)
                    outcomes.append("dropped")
                    continue
                if isinstance(item, Verified) or item.verified.position in held:
                    outcomes.append("duplicate")
                    continue
                verified = item.verified
                if (
                    verified.position < size
                    and verified.position not in covered
                    and leaves[verified.position] != bytes(leaf_hash(verified.entry or b""))
                ):
                    drops.append("digest")  # the entry is not the mirrored leaf
                    outcomes.append("dropped")
                    continue
                if item.blob is not None:
                    blobs.append(item.blob)
                if item.rules is not None:
                    rule_set_id, version, digest, token = item.rules
                    store.add_rule_set(
                        session, rule_set_id, version, digest=digest, token=token, now=now
                    )
                held.add(verified.position)
                rows.append((verified.position, verified.subject, verified.body))
                outcomes.append("stored")
            store.add_blobs(session, blobs, now)
            store.add_messages(session, stream, rows, now)
            for list_id, (uri, token, media_type) in tokens.items():
                store.put_status_list(
                    session, list_id, uri, token=token, media_type=media_type, now=now
                )
            for reason in drops:
                store.count(session, f"dropped.{reason}")
            for path, number in paths.items():
                if number:
                    store.count(session, f"verified.{path}", number)
            if cursor is not None:
                store.set_counter(session, cursor[0], cursor[1])
        for reason in drops:
            self._dropped(stream, reason)
        return outcomes

    def _dropped(self, stream: str, reason: str) -> None:
        log.warning(
            "node: dropped a message", extra={"fields": {"stream": stream, "reason": reason}}
        )
        if self.on_drop is not None:
            self.on_drop(stream, reason)

    def _check(
        self, stream: str, items: Sequence[tuple[bytes, str]]
    ) -> tuple[list[Verified | Dropped], set[int], dict[str, int], dict[int, bytes]]:
        # Every message checked, in order; the positions of the stream already held; how
        # many were checked by a mirrored leaf and how many by their own signatures; the
        # mirrored leaves they were checked by.
        received = [self._receive(body, subject, stream) for body, subject in items]
        indexes = [r.index for r in received if isinstance(r, Received) and r.index is not None]
        with transaction(self.sessions) as session:
            # Leaves a verified checkpoint covers prove their messages (verify_covered);
            # the others are checked by their signatures.
            size = store.tree_size(session)
            covered = store.TreeSource(session).leaves([i for i in indexes if i < size])
            held = store.held_positions(session, stream, indexes)
        checked = [
            r
            if isinstance(r, Dropped)
            else self._verify(r, None if r.index is None else covered.get(r.index))
            for r in received
        ]
        # Counted when the check passed: a dropped message is counted by its reason.
        passed = [
            r.index in covered
            for r, c in zip(received, checked, strict=True)
            if isinstance(r, Received) and isinstance(c, Verified)
        ]
        by_checkpoint = sum(passed)
        by_signature = len(passed) - by_checkpoint
        paths = {"checkpoint": by_checkpoint, "signature": by_signature}
        return checked, held, paths, covered

    @staticmethod
    def _receive(body: bytes, subject: str, stream: str) -> Received | Dropped:
        try:
            return receive(body, subject, stream)
        except Dropped as dropped:
            return dropped

    def _verify(self, received: Received, leaf: bytes | None) -> Verified | Dropped:
        try:
            verified = (
                verify_signed(received, self.pins)
                if leaf is None
                else verify_covered(received, self.pins, leaf)
            )
        except Dropped as dropped:
            return dropped
        except ValueError as e:  # UnicodeError too: a check met input it did not expect
            # No message, however malformed, may raise out of the batch: it would be
            # negatively acknowledged with its batch and delivered again forever.
            log.warning("node: a check raised", exc_info=e)
            return Dropped("schema", f"malformed: {type(e).__name__}")
        if verified.kind == "checkpoint":
            return Dropped("subject", "a checkpoint outside the checkpoints stream")
        return verified

    def _prepare(self, verified: Verified) -> _Prepared | Dropped:
        # Fetches outside the unit of work: a Dropped is counted, a transient failure raises.
        stream = verified.stream
        try:
            details = (verified.event or {}).get("details")
            blob: tuple[str, bytes] | None = None
            cid = details.get("cid") if isinstance(details, dict) else None
            if stream == _EVENTS and isinstance(cid, str):
                data = self.platform.blob(cid)
                if blob_cid(data) != cid:
                    raise Dropped("blob", "the platform's bytes are not the event's CID")
                blob = (cid, data)
            rules = self._rule_set(details) if stream == _RULES else None
        except Dropped as dropped:
            return dropped
        return _Prepared(verified, blob, rules)

    def _one_checkpoint(self, body: bytes, subject: str, stream: str) -> str:
        try:
            verified = verify_message(body, subject, stream, self.pins)
            if verified.kind != "checkpoint":
                raise Dropped("subject", "an event in the checkpoints stream")
            verified, cosigned = self._committee_lines(verified)
            with transaction(self.sessions) as session:
                mirrored = store.has_message(session, stream, verified.position)
            if mirrored:
                return self._cosigned(verified) if cosigned else "duplicate"
            return self._checkpoint(verified)
        except Dropped as dropped:
            with transaction(self.sessions) as session:
                store.count(session, f"dropped.{dropped.reason}")
            self._dropped(stream, dropped.reason)
            return "dropped"

    def _committee_lines(self, verified: Verified) -> tuple[Verified, bool]:
        # The checkpoint with only the committee lines that verify under a pinned key, and
        # whether one did; each other is counted dropped.committee.
        lines = sort_committee_lines(verified.note or "", self.committee_keys)
        if lines.dropped:
            with transaction(self.sessions) as session:
                store.count(session, "dropped.committee", lines.dropped)
            log.warning("node: dropped %d committee line(s) that do not verify", lines.dropped)
        return replace(verified, note=lines.note), lines.verified > 0

    def _cosigned(self, verified: Verified) -> str:
        # A mirrored checkpoint again, with a verified committee line: served with it from
        # now on if the log signed the mirrored root for that size.
        checkpoint = verified.checkpoint
        assert checkpoint is not None
        assert verified.note is not None
        with transaction(self.sessions) as session:
            row = store.checkpoint(session, checkpoint.size)
            if row is None or bytes(row.root_hash) != bytes(checkpoint.root_hash):
                raise Dropped("checkpoint", "not the mirrored checkpoint of that size")
            if row.note == verified.note:
                return "duplicate"
            store.set_checkpoint_note(session, checkpoint.size, verified.note)
        return "stored"

    def _store(self, session: Session, verified: Verified, now: datetime) -> str:
        stored = store.add_message(
            session,
            verified.stream,
            verified.position,
            subject=verified.subject,
            body=verified.body,
            now=now,
        )
        return "stored" if stored else "duplicate"

    def _checkpoint(self, verified: Verified) -> str:
        checkpoint, note = verified.checkpoint, verified.note or ""
        assert checkpoint is not None
        size = checkpoint.size
        with transaction(self.sessions) as session:
            start = store.tree_size(session)
        fetched = self._leaves(start, size)
        try:
            with transaction(self.sessions) as session:
                now = self.clock.now()
                if store.tree_size(session) != start:
                    raise store.ConflictError("the mirror moved; deliver again")
                if fetched:
                    store.append_leaves(session, start, fetched)
                if store.tree_root(session, size) != checkpoint.root_hash:
                    raise Dropped("fork", f"the root of size {size} is not the mirror's")
                store.add_checkpoint(session, size, bytes(checkpoint.root_hash), note, now)
                return self._store(session, verified, now)
        except Dropped as fork:
            with transaction(self.sessions) as session:
                store.record_fork(session, size, note, fork.detail[:64], self.clock.now())
            log.error("node: refused a checkpoint of size %d: a fork (%s)", size, fork.detail)
            raise

    def _leaves(self, start: int, size: int) -> list[bytes]:
        # The leaf hashes [start, size) from the platform's entry bundles.
        hashes: list[bytes] = []
        index = start
        while index < size:
            tile = index // TILE_WIDTH
            count = min(TILE_WIDTH, size - tile * TILE_WIDTH)
            entries = self.platform.entries(tile, count)
            for entry in entries[index - tile * TILE_WIDTH :]:
                hashes.append(bytes(leaf_hash(entry)))
            index = tile * TILE_WIDTH + count
        return hashes

    def _rule_set(self, details: object) -> tuple[str, int, str, str]:
        # The rule set a rules.* message names: fetched, its token verified, its hash the
        # message's (rule_set, version, hash, token).
        if not isinstance(details, dict):
            raise Dropped("schema", "a rules message without details")
        rule_set_id, version, digest = (
            details.get("rule_set"),
            details.get("version"),
            details.get("hash"),
        )
        if (
            not isinstance(rule_set_id, str)
            or not isinstance(version, int)
            or not isinstance(digest, str)
        ):
            raise Dropped("schema", "a rules message names no rule set version")
        view = self.platform.rule_set(rule_set_id, version)
        token = view.get("token")
        if not isinstance(token, str):
            raise Dropped("rules", "the platform's rule set has no token")
        keys = self.platform.rule_set_keys()
        try:
            key = issuer_key_resolver(keys)({"kid": rule_set_kid(token)})
            signed = verify_rule_set(token, key)
        except CommonsError as e:
            raise Dropped("rules", f"the rule set does not verify: {e.detail}") from e
        found = signed.rule_set
        if (found.id, found.version, rule_set_hash(found)) != (rule_set_id, version, digest):
            raise Dropped("rules", "the signed rule set is not the one the message names")
        return rule_set_id, version, digest, token

    # -- status lists ----------------------------------------------------------------------

    def issuer(self) -> tuple[str, JsonObject]:
        """The followed issuer and its keys (JWKS) as last fetched."""
        with transaction(self.sessions) as session:
            pinned = store.pins(session)
        return pinned["issuer"], json.loads(pinned["issuer_jwks"])

    def _fetch_status_lists(self) -> dict[str, tuple[str, str, str]]:
        with transaction(self.sessions) as session:
            known = store.status_lists(session)
        return {list_id: self.fetch_status_list(list_id, uri) for list_id, uri in known}

    def fetch_status_list(self, list_id: str, uri: str) -> tuple[str, str, str]:
        """Fetch list ``list_id`` from the platform and check it as a verifier would (its
        signature by the issuer's keys, ``sub`` = ``uri``, not expired): (uri, token, type).
        Raises :class:`StatusListRejected`."""
        body, media_type = self.platform.status_list(list_id)
        _, jwks = self.issuer()
        check = StatusListFetcher(
            StoredStatusLists({uri: (body, media_type)}), issuer_key_resolver(jwks)
        )
        try:
            check.status(uri, 0)
        except StatusListRejected:
            raise
        except CommonsError as e:
            raise StatusListRejected(f"the status list is not acceptable: {e.detail}") from e
        return uri, body.decode("ascii"), media_type

    def mirror_status_list(self, list_id: str, uri: str) -> None:
        """Fetch, check and store list ``list_id`` now (the first time the node's verifier
        meets it)."""
        _, token, media_type = self.fetch_status_list(list_id, uri)
        with transaction(self.sessions) as session:
            store.put_status_list(
                session, list_id, uri, token=token, media_type=media_type, now=self.clock.now()
            )
