"""The inputs of a full node's scoring (node/scoring.py): the stored messages' payloads,
which spine event types the node scores from which stream, and the scorer's events and
memberships built from the mirrored messages and member documents."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from credit_commons.core.encoding import (
    JsonObject,
    b64url_decode,
)
from credit_commons.core.errors import CommonsError, ConflictError
from credit_commons.node.models import NodeMemberRow
from credit_commons.reputation import (
    Membership,
    ScoringEvent,
    blob_cid,
    did_sha256,
    parse_event,
)

__all__ = [
    "EVENTS_STREAM",
    "MEMBERS_STREAM",
    "STREAM_OF_TYPE",
    "ScoringInput",
    "ScoringRefused",
    "did_sha",
    "entry_stream",
    "excluded_dids",
    "member_row",
    "memberships_of",
    "scoring_event",
    "stored_payload",
]

EVENTS_STREAM: Final = "COMMONS_EVENTS"
MEMBERS_STREAM: Final = "COMMONS_MEMBERS"


class ScoringRefused(ConflictError):
    """The node does not score: no verified rule set in effect, a mirrored rule set that
    does not verify, or an input that is not what the mirror holds; ``reason`` says which."""

    code = "node.scoring_refused"
    title = "The node refuses to score"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason = reason


STREAM_OF_TYPE: Final[Mapping[str, str]] = {
    # The spine event types the platform publishes on the streams the node scores
    # (federation/subjects.py: events.<ctx>, members.*).
    "reputation.event": EVENTS_STREAM,
    "reputation.member": MEMBERS_STREAM,
    "reputation.member_revoked": MEMBERS_STREAM,
    "reputation.member_reinstated": MEMBERS_STREAM,
    "reputation.excluded": MEMBERS_STREAM,
}


def stored_payload(body: str) -> JsonObject:
    # A stored message was verified before it was stored: its payload is read, not checked.
    payload: JsonObject = json.loads(b64url_decode(body.split(".")[1]))
    return payload


@dataclass(frozen=True)
class ScoringInput:
    position: int
    subject: str
    event: JsonObject
    entry: bytes


def entry_stream(entry: bytes) -> str | None:
    """The stream whose message a log entry's spine event is published in, if the node
    scores it."""
    try:
        reference = json.loads(entry)
    except ValueError:
        return None
    kind = reference.get("type") if isinstance(reference, dict) else None
    return STREAM_OF_TYPE.get(kind) if isinstance(kind, str) else None


def member_row(event: JsonObject, document: JsonObject, now: datetime) -> NodeMemberRow | None:
    """The mirrored row of a member document, or ``None`` when it is not what its spine
    event states."""
    details = event.get("details")
    if not isinstance(details, dict):
        return None
    did, kyc, since = document.get("did"), document.get("kyc"), document.get("since")
    credential = document.get("credentialSha256")
    issuer, vct = document.get("issuer"), document.get("vct")
    if not all(isinstance(v, str) for v in (did, since, credential, issuer, vct)):
        return None
    did, since, credential = str(did), str(since), str(credential)
    issuer, vct = str(issuer), str(vct)
    if (
        document.get("event") != event.get("id")
        or details.get("did_sha256") != did_sha256(did)
        or details.get("kyc") is not kyc
        or details.get("credential_sha256") != credential
        or str(event.get("at", ""))[:10] != since
    ):
        return None
    try:
        day = date.fromisoformat(since)
    except ValueError:
        return None
    return NodeMemberRow(
        event_id=str(event["id"]),
        did=did,
        kyc=bool(kyc),
        issuer=issuer,
        vct=vct,
        credential_sha256=credential,
        since=day,
        received_at=now,
    )


def scoring_event(item: ScoringInput, blobs: Mapping[str, bytes | None]) -> ScoringEvent:
    details = item.event.get("details")
    assert isinstance(details, dict)
    cid = str(details.get("cid"))
    blob = blobs.get(cid)
    if blob is None or blob_cid(blob) != cid:
        raise ScoringRefused("input", "a mirrored event's blob is missing or not its CID")
    try:
        event = parse_event(blob)
        event.verify()
    except CommonsError as e:
        raise ScoringRefused("input", f"a mirrored event does not verify ({e.code})") from e
    if details.get("from_sha256") != did_sha256(event.sender) or details.get(
        "to_sha256"
    ) != did_sha256(event.to):
        raise ScoringRefused("input", "a spine event is not about its blob's DIDs")
    return ScoringEvent(
        type=event.type,
        sender=event.sender,
        subject=event.to,
        ctx=event.ctx,
        issued_at=event.issued_at,
        cid=cid,
    )


def did_sha(item: ScoringInput) -> str:
    details = item.event.get("details")
    return str(details.get("did_sha256")) if isinstance(details, dict) else ""


def excluded_dids(members: Sequence[ScoringInput]) -> set[str]:
    """The SHA-256 of the DIDs the ``members.excluded`` messages among ``members`` name."""
    return {did_sha(m) for m in members if m.subject == "members.excluded"}


def memberships_of(
    members: Sequence[ScoringInput],
    documents: Mapping[str, NodeMemberRow],
    failures: Mapping[str, str],
) -> tuple[list[Membership], set[str]]:
    """The memberships recorded below the checkpoint with their ends as the revocations,
    suspensions and reinstatements below it leave them, and the excluded DIDs' SHA-256.
    Raises :class:`ScoringRefused` (``members_pending``) for a membership of a DID not
    excluded below the checkpoint whose document is not mirrored, naming its event (and
    why its last fetch failed, from ``failures``)."""
    rows: dict[str, NodeMemberRow] = {}
    revoked: dict[str, date] = {}
    suspended: dict[str, date] = {}
    gone = excluded_dids(members)
    excluded: set[str] = set()
    for item in members:  # in log order
        details = item.event.get("details")
        assert isinstance(details, dict)
        day = date.fromisoformat(str(item.event.get("at", ""))[:10])
        if item.subject == "members.recorded":
            if did_sha(item) in gone:
                continue  # an excluded DID's membership: the scorer leaves it out
            event_id = str(item.event.get("id"))
            row = documents.get(event_id)
            if row is None:
                why = failures.get(event_id)
                raise ScoringRefused(
                    "members_pending",
                    f"the member document of {event_id} is not mirrored"
                    + ("" if why is None else f" ({why})"),
                )
            rows[row.event_id] = row
        elif item.subject == "members.revoked":
            target = str(details.get("member_event_id"))
            if details.get("status") == "revoked":
                revoked.setdefault(target, day)
            else:
                suspended[target] = day
        elif item.subject == "members.reinstated":
            suspended.pop(str(details.get("member_event_id")), None)
        elif item.subject == "members.excluded":
            excluded.add(str(details.get("did_sha256")))
    out = []
    for event_id, row in rows.items():
        ends = [d for d in (revoked.get(event_id), suspended.get(event_id)) if d is not None]
        out.append(Membership(row.did, row.issuer, row.vct, row.since, min(ends, default=None)))
    return out, excluded
