"""The in-process reputation world shared by the reputation integration tests
(test_reputation_events, _scores, _exclusions, _score_bundles): members named by a small
number (their Ed25519 key is that byte 32 times, their DID its ``did:key``), the platform's
dev rule set, memberships, signed events, a forced checkpoint and a reference recompute of
the stored inputs.  The tests differ in the members and events they make, not in how."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from credit_commons.core.db import transaction
from credit_commons.jobs import bundles_step
from credit_commons.keys import KeyType, PrivateKey, encode_did_key
from credit_commons.ledger.worker import LogWorker
from credit_commons.reputation import (
    EventAccepted,
    RuleSet,
    new_nonce,
    rules_service,
    scores_store,
    sign_event,
)
from credit_commons.reputation import service as reputation_service
from credit_commons.reputation.models import ReputationEventRow
from credit_commons.reputation.scorer import score_reference
from credit_commons.reputation.scores_service import scoring_events, scoring_members
from credit_commons.runtime import Runtime

__all__ = [
    "AT",
    "CTX",
    "KYC_VCT",
    "active_rules",
    "checkpoint",
    "fetch_bundle",
    "member_did",
    "member_key",
    "reference_records",
    "register_dev_rules",
    "register_member",
    "signed_event",
    "submit",
]

AT = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
KYC_VCT = "https://credit-commons.dev/vct/kyc/v1"
CTX = "shg:savings"
_NONCES = itertools.count(1)


def member_key(n: int) -> PrivateKey:
    return PrivateKey.from_raw(KeyType.ED25519, bytes([n]) * 32)


def member_did(n: int) -> str:
    return encode_did_key(member_key(n).public_key)


def register_dev_rules(rt: Runtime) -> None:
    """The platform's dev rule set (this platform's KYC credentials trusted), in effect."""
    with transaction(rt.sessions) as session:
        rules_service.register_dev_rule_set(session, rt, actor=rt.operator_actor("reputation"))


def active_rules(rt: Runtime) -> RuleSet:
    with transaction(rt.sessions) as session:
        return rules_service.active_rule_set(session, rt, rt.clock.now()).rule_set


def register_member(
    rt: Runtime,
    n: int,
    *,
    rules: RuleSet | None = None,
    vct: str = KYC_VCT,
    issuer: str | None = None,
    credential_sha256: str | None = None,
    status_ref: str | None = None,
) -> None:
    """Member ``n``'s membership by a credential of type ``vct`` from ``issuer`` (default:
    this platform), under ``rules`` (default: the rule set in effect)."""
    rules = rules if rules is not None else active_rules(rt)
    with transaction(rt.sessions) as session:
        reputation_service.register_member(
            session,
            rt,
            did=member_did(n),
            vct=vct,
            issuer=issuer or rt.settings.public_url,
            credential_sha256=credential_sha256 or f"{n:02x}" * 32,
            status_ref=status_ref,
            rules=rules,
        )


def signed_event(sender: int, to: int, *, at: datetime = AT, **fields: Any) -> dict[str, Any]:
    """A vouch from ``sender`` to ``to`` in ``shg:savings`` in ``at``'s month, issued a
    minute before ``at`` with a fresh nonce; ``fields`` override any of these."""
    values: dict[str, Any] = {
        "type": "vouch",
        "to": member_did(to),
        "ctx": CTX,
        "epoch": at.strftime("%Y-%m"),
        "nonce": new_nonce(next(_NONCES).to_bytes(12, "big")),
        "issued_at": at - timedelta(minutes=1),
    }
    values.update(fields)
    return sign_event(member_key(sender), **values).document()


def submit(rt: Runtime, doc: dict[str, Any], rules: RuleSet | None = None) -> EventAccepted:
    """Submit a signed event under ``rules`` (default: the rule set in effect)."""
    rules = rules if rules is not None else active_rules(rt)
    with transaction(rt.sessions) as session:
        return reputation_service.submit_event(session, rt, doc, rules)


def checkpoint(rt: Runtime) -> None:
    """Sequence what is pending and publish a checkpoint now."""
    LogWorker(rt, steps=[]).run_once(force_checkpoint=True)


def reference_records(
    rt: Runtime,
    as_of: date,
    ctxs: Iterable[str],
    *,
    excluded: Iterable[str] = (),
    cids: set[str] | None = None,
) -> dict[tuple[str, str], bytes]:
    """A full reference recompute of every stored event (``cids``: only those) and
    membership under the rule set in effect, leaving out ``excluded`` DIDs:
    ``{(did, ctx): record JCS}``."""
    rules = active_rules(rt)
    with transaction(rt.sessions) as session:
        rows = list(session.scalars(select(ReputationEventRow)))
        members = scoring_members(scores_store.members(session), rules)
    events = [e for e in scoring_events(rows) if cids is None or e.cid in cids]
    left_out = set(excluded)
    out: dict[tuple[str, str], bytes] = {}
    for ctx in ctxs:
        records = score_reference(events, members, left_out, rules, as_of=as_of, ctx=ctx)
        for did, record in records.items():
            out[(did, ctx)] = record.to_jcs()
    return out


def fetch_bundle(client: TestClient, n: int, **headers: str) -> Any:
    """Fetch member ``n``'s score bundle as a client does: on 202 (being prepared, with a
    ``Retry-After``) run the jobs step that builds requested bundles, then fetch again — a
    bounded number of times."""
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    for _ in range(3):
        answer = client.get(
            "/v1/scores", params={"did": member_did(n), "ctx": CTX}, headers=headers
        )
        if answer.status_code != 202:
            return answer
        assert int(answer.headers["retry-after"]) > 0
        assert answer.json()["status"] == "pending"
        bundles_step()(rt, 0)
    raise AssertionError("the bundle was not prepared")
