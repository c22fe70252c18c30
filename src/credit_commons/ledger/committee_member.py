"""A checkpoint committee member: its key share, its own copy of the log, and the loop that
signs the log's tasks (``commons committee member serve``).

A member node is a Credit Commons data directory of its own (database and master key).
Its share is imported once from the dealer's share file and kept wrapped under the node's
master key (``committee_shares``; the plaintext never reaches a log line or an error).

Each pass of :class:`CommitteeMember`:

1. asks the log for its task (``GET /v1/tasks/current``); nothing to do without one, or
   when the committee in effect is not this share's;
2. opens the task's checkpoint with the **pinned** log key (the member never learns the
   log's key from the log) and checks that the task's size and root are the note's;
3. refuses a tree smaller than the last one it signed, and another root at the same size;
4. fetches the entries it does not hold yet (``/tile/entries/…``, from the log or any
   mirror), extends its frontier (ledger/frontier.py) and recomputes the root: a root it
   cannot reproduce from the leaves it holds plus the new ones is refused.  The frontier
   already holds every leaf up to the last root it signed, so a reproduced root extends
   that root (consistency by construction: the same leaves, then more);
5. records the new frontier and the signed tree head **before** the partial leaves the
   node, then posts it (``POST /v1/partials``) with the service token of the full node the
   log binds this member to (its own key, :class:`ServiceIdentity`; scope
   ``partials:write``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.db import transaction
from credit_commons.core.encoding import JsonObject, b64_encode, sha256_hex
from credit_commons.core.errors import CommonsError, NotFoundError, UnavailableError
from credit_commons.events import Digest, EventDetails, Token, record_event
from credit_commons.formats.tlog_tiles import TILE_WIDTH
from credit_commons.keys import ServiceIdentity
from credit_commons.ledger import committee
from credit_commons.ledger.checkpoint import verify_checkpoint
from credit_commons.ledger.committee_errors import (
    CommitteeExists,
    CommitteeTaskRefused,
)
from credit_commons.ledger.committee_setup import CommitteeGroup, MemberShare
from credit_commons.ledger.frontier import Frontier
from credit_commons.ledger.models import CommitteeMemberStateRow, CommitteeShareRow
from credit_commons.ledger.note import Ed25519Verifier, parse_note
from credit_commons.ledger.recovery import HttpTiles, read_entries
from credit_commons.ledger.rfc6962 import Hash
from credit_commons.runtime import Runtime

__all__ = [
    "CommitteeMember",
    "CommitteeShareImported",
    "MemberReport",
    "import_share",
    "load_share",
    "member_status",
]

log = logging.getLogger("credit_commons.ledger.committee_member")

_PURPOSE = "committee-share"
# Entries fetched and hashed per step while catching up (64 tiles).
_CHUNK = 64 * TILE_WIDTH
_MAX_ANSWER = 64 * 1024


class CommitteeShareImported(EventDetails, event_type="committee.share_imported"):
    """This node holds member ``member``'s share of committee ``committee``."""

    committee: Token
    member: int
    group_key: Digest  # SHA-256 hex of the group key


def _aad(group_key: bytes, index: int) -> bytes:
    return b"credit-commons/committee-share/v1\x00" + group_key + bytes([index])


def import_share(session: Session, rt: Runtime, share: MemberShare, *, now: datetime) -> None:
    """Keep ``share`` wrapped under the node's master key; raises :class:`CommitteeExists`
    when this node holds a share of that committee already."""
    group = share.group
    if session.get(CommitteeShareRow, group.group_key.hex()) is not None:
        raise CommitteeExists("this node holds a share of that committee already")
    wrapped = rt.master.wrap(
        share.share.to_bytes(), purpose=_PURPOSE, aad=_aad(group.group_key, share.index)
    )
    session.add(
        CommitteeShareRow(
            group=group.group_key.hex(),
            name=group.name,
            member=share.index,
            threshold=group.threshold,
            member_keys=b"".join(group.member_keys),
            wrapped=wrapped,
            created_at=now,
        )
    )
    record_event(
        session,
        CommitteeShareImported(
            committee=group.name, member=share.index, group_key=sha256_hex(group.group_key)
        ),
        actor=rt.operator_actor(),
        at=now,
    )
    session.flush()


def load_share(session: Session, rt: Runtime, group: str | None = None) -> MemberShare:
    """The node's share (of the committee whose group key is ``group``, hex; the only one
    by default).  Raises :class:`NotFoundError`, or :class:`KeyDecryptionFailed` when the
    master key cannot open it."""
    rows = list(session.scalars(select(CommitteeShareRow).order_by(CommitteeShareRow.group)))
    if group is not None:
        rows = [r for r in rows if r.group == group.lower()]
    if len(rows) != 1:
        raise NotFoundError(
            "this node holds no committee share"
            if not rows
            else "this node holds several shares: name the group key (--group)"
        )
    row = rows[0]
    group_key = bytes.fromhex(row.group)
    keys = bytes(row.member_keys)
    size = committee.PUBLIC_KEY_SIZE
    described = CommitteeGroup(
        row.name,
        row.threshold,
        group_key,
        tuple(keys[i : i + size] for i in range(0, len(keys), size)),
    )
    secret = rt.master.unwrap(row.wrapped, purpose=_PURPOSE, aad=_aad(group_key, row.member))
    return MemberShare(described, committee.KeyShare.from_bytes(secret))


def member_status(session: Session, group: CommitteeGroup) -> JsonObject:
    """What the node holds of the log it cosigns, and the last tree head it signed."""
    state = session.get(CommitteeMemberStateRow, group.group_key.hex())
    return {
        "committee": group.name,
        "vkey": group.vkey,
        "origin": None if state is None else state.origin,
        "leaves_held": 0 if state is None else int(state.size),
        "signed_size": None if state is None else state.signed_size,
        "signed_root": None
        if state is None or state.signed_root is None
        else Hash(bytes(state.signed_root)).b64(),
    }


@dataclass(frozen=True)
class MemberReport:
    """What one pass did: ``idle`` (no task), ``other`` (a task for another committee),
    ``signed`` (a partial was sent; ``answer`` is the log's), ``refused`` (the task was
    not signed; ``reason``) or ``error`` (the log or the source could not be used)."""

    status: str
    size: int | None = None
    reason: str | None = None
    answer: dict[str, Any] | None = None


class CommitteeMember:
    """One member's signing loop over a log at ``log_url`` whose key is ``log_vkey``.

    ``identity`` is the member's full node's service key, whose tokens carry its partials;
    ``client`` talks to the log (tests pass an in-process one); ``tiles`` reads entry
    bundles (default: the log's own tiles through ``client``).
    """

    def __init__(
        self,
        rt: Runtime,
        *,
        log_url: str,
        log_vkey: str,
        identity: ServiceIdentity,
        client: httpx.Client | None = None,
        tiles_client: httpx.Client | None = None,
        group: str | None = None,
    ) -> None:
        self.rt = rt
        self.verifier = Ed25519Verifier.from_vkey(log_vkey)
        base = log_url.rstrip("/") + "/"
        self.client = client or httpx.Client(
            base_url=base, timeout=10.0, follow_redirects=False, trust_env=False
        )
        self.tiles = HttpTiles(tiles_client or self.client)
        self.identity = identity
        self._audience: str | None = None
        with transaction(rt.read_sessions) as session:
            self.share = load_share(session, rt, group)
        self._stop = threading.Event()

    @property
    def group(self) -> CommitteeGroup:
        """The committee this node is a member of."""
        return self.share.group

    def _get_json(self, path: str, what: str) -> JsonObject:
        try:
            answer = self.client.get(path)
        except httpx.HTTPError as e:
            raise UnavailableError(f"the log cannot be reached ({e.__class__.__name__})") from e
        if answer.status_code != 200 or len(answer.content) > _MAX_ANSWER:
            raise UnavailableError(f"the log answered {answer.status_code} for {what}")
        try:
            body = answer.json()
        except ValueError as e:
            raise UnavailableError(f"the log's {what} is not JSON") from e
        if not isinstance(body, dict):
            raise UnavailableError(f"the log's {what} is not a JSON object")
        return body

    def _token(self) -> str:
        # The audience a token names is the log's own name for itself (RFC 8414 issuer),
        # asked once.
        if self._audience is None:
            metadata = self._get_json(".well-known/oauth-authorization-server", "metadata")
            issuer = metadata.get("issuer")
            if not isinstance(issuer, str) or not issuer:
                raise UnavailableError("the log's metadata names no issuer")
            self._audience = issuer.rstrip("/")
        ttl = self.rt.settings.service_token_ttl
        return self.identity.token(audience=self._audience, scopes=["partials:write"], ttl=ttl)

    def _get_task(self) -> JsonObject:
        return self._get_json("v1/tasks/current", "task")

    def run_once(self) -> MemberReport:
        """One pass (see the module); never raises for the log's or a source's failures."""
        try:
            return self._pass()
        except CommitteeTaskRefused as e:
            log.warning("committee task refused", extra={"fields": {"reason": e.detail}})
            return MemberReport("refused", reason=e.detail)
        except CommonsError as e:
            log.warning("committee member pass failed", extra={"fields": {"code": e.code}})
            return MemberReport("error", reason=e.code)

    def _pass(self) -> MemberReport:
        # 1.
        body = self._get_task()
        described, task = body.get("committee"), body.get("task")
        if not isinstance(task, dict) or not isinstance(described, dict):
            return MemberReport("idle")
        if described.get("group_key") != b64_encode(self.group.group_key):
            return MemberReport("other")
        # 2.
        note = task.get("checkpoint")
        if not isinstance(note, str) or len(note) > _MAX_ANSWER:
            raise CommitteeTaskRefused("the task carries no checkpoint note")
        try:
            checkpoint = verify_checkpoint(note, self.verifier, origin=self.verifier.name)
        except CommonsError as e:
            raise CommitteeTaskRefused(
                f"the task's checkpoint is not signed by the pinned log key: {e.detail}"
            ) from e
        if task.get("size") != checkpoint.size or task.get("root") != checkpoint.root_hash.b64():
            raise CommitteeTaskRefused("the task's size or root is not its checkpoint's")
        size, root = checkpoint.size, checkpoint.root_hash
        with transaction(self.rt.read_sessions) as session:
            state = session.get(CommitteeMemberStateRow, self.group.group_key.hex())
            if state is not None and state.origin != checkpoint.origin:
                raise CommitteeTaskRefused("this member's copy is of another log origin")
            frontier = (
                Frontier()
                if state is None
                else Frontier.from_bytes(int(state.size), bytes(state.frontier))
            )
            signed = (
                None
                if state is None or state.signed_size is None or state.signed_root is None
                else (int(state.signed_size), Hash(bytes(state.signed_root)))
            )
        # 3.
        if signed is not None and (size < signed[0] or (size == signed[0] and root != signed[1])):
            raise CommitteeTaskRefused(
                f"tree size {size} with this root does not extend the tree head this member "
                f"signed (size {signed[0]})"
            )
        if size < frontier.size:
            raise CommitteeTaskRefused(f"tree size {size} is below the {frontier.size} held")
        # 4.
        start = frontier.size
        while frontier.size < size:
            end = min(size, frontier.size + _CHUNK)
            for entry in read_entries(self.tiles, frontier.size, end):
                frontier.append_entry(entry)
        if frontier.root() != root:
            raise CommitteeTaskRefused(
                f"the root of tree size {size} cannot be reproduced from this member's copy "
                f"(leaves 0-{start} held, {start}-{size} fetched)"
            )
        # 5.
        text = parse_note(note).text.encode("utf-8")
        partial = self.share.share.sign(text)
        now = self.rt.clock.now()
        with transaction(self.rt.sessions) as session:
            session.merge(
                CommitteeMemberStateRow(
                    group=self.group.group_key.hex(),
                    origin=checkpoint.origin,
                    size=frontier.size,
                    frontier=frontier.to_bytes(),
                    signed_size=size,
                    signed_root=bytes(root),
                    updated_at=now,
                )
            )
        answer = self.post_partial(size, root, partial)
        return MemberReport("signed", size, answer=answer)

    def post_partial(
        self, size: int, root: bytes, partial: committee.PartialSignature
    ) -> JsonObject:
        """Send one partial signature; the log's JSON answer (a problem for a refusal).

        Raises :class:`UnavailableError` when the log cannot be reached."""
        payload = {
            "group_key": b64_encode(self.group.group_key),
            "member": partial.index,
            "size": size,
            "root": b64_encode(root),
            "signature": b64_encode(partial.signature),
        }
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            answer = self.client.post("v1/partials", json=payload, headers=headers)
        except httpx.HTTPError as e:
            raise UnavailableError(f"the log cannot be reached ({e.__class__.__name__})") from e
        try:
            body = answer.json()
        except ValueError:
            body = None
        result: dict[str, Any] = {"status": answer.status_code}
        if isinstance(body, dict):
            result.update(body)
        return result

    def serve(self, poll: float) -> None:
        """Run passes every ``poll`` seconds until :meth:`stop` (SIGTERM in the CLI)."""
        last: tuple[str, int | None] | None = None
        while not self._stop.is_set():
            report = self.run_once()
            seen = (report.status, report.size)
            if report.status == "signed" and seen != last:
                log.info(
                    "committee partial sent",
                    extra={"fields": {"size": report.size, "answer": report.answer}},
                )
            last = seen
            self._stop.wait(poll)

    def stop(self) -> None:
        """End :meth:`serve` at its next wake-up."""
        self._stop.set()
