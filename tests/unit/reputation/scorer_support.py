"""Shared helpers for the scorer tests: the contract's example rule set and event builders."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from credit_commons.reputation import RuleSet, parse_rule_set
from credit_commons.reputation.scorer import (
    ScoreRecord,
    ScoringEvent,
    ScoringMember,
    score_reference,
)
from credit_commons.reputation.scorer_sparse import columns_from_events, score_sparse

AS_OF = date(2027, 3, 1)
CTX = "shg:savings"
RULES_ORDER = ("bronze", "silver", "gold")


def rule_set_json(**overrides: Any) -> dict[str, Any]:
    """The rule set of the shared contract (docs/reputation.md), with top-level or nested
    overrides given as ``section__field=value``."""
    rules: dict[str, Any] = {
        "id": "shg-rules",
        "version": 1,
        "validFrom": "2026-12-14T00:00:00Z",
        "timeLockDays": 7,
        "contexts": ["general", "commerce", "shg:savings"],
        "weights": {"alpha": "10", "beta": "2", "gamma": "3", "delta": "5", "tau": "4"},
        "caps": {"voucherScore": "100", "attestations": 5, "tenureDays": 365},
        "budgets": {"vouchesPerEpoch": 5, "reportsPerEpoch": 3},
        "decay": {"halfLifeDays": 180},
        "epoch": {"maxEventAgeSeconds": 86400, "maxFutureSkewSeconds": 300},
        "iterations": 3,
        "kyc": {"credentialTypes": ["urn:vct:kyc"], "trustedIssuers": ["https://issuer.test"]},
        "adjudication": {"reportQuorum": 2, "reportWindowDays": 90},
        "aura": {
            "perCounterpartyCap": 3,
            "perCounterpartyDecayExponent": "0.5",
            "collusion": {"top2Threshold": "0.8", "multiplier": "0.5"},
            "tiers": [
                {"name": "bronze", "minScore": "0"},
                {"name": "silver", "minScore": "25"},
                {"name": "gold", "minScore": "60"},
            ],
            "diversity": {"silver": 2, "gold": 5},
            "outputCredentialType": "https://credit-commons.dev/vct/community-tier/v1",
            "minTierForCredential": "silver",
            "domain": "shg:*",
            "purpose": "Community standing of self-help-group members for credit readiness",
        },
    }
    for key, value in overrides.items():
        target = rules
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return rules


def scoring_rules(**overrides: Any) -> RuleSet:
    """The contract's rule set, parsed, with ``rule_set_json``'s overrides."""
    return parse_rule_set(rule_set_json(**overrides))


def did(name: str) -> str:
    """A stable stand-in DID per name (the scorer treats DIDs as opaque strings)."""
    return "did:key:z6Mk" + hashlib.sha256(name.encode()).hexdigest()[:40]


def event(
    kind: Literal["vouch", "report"],
    sender: str,
    subject: str,
    days_ago: int,
    *,
    ctx: str = CTX,
    salt: str = "",
    as_of: date = AS_OF,
) -> ScoringEvent:
    on = as_of - timedelta(days=days_ago)
    at = datetime.combine(on, time(12, 0), tzinfo=UTC)
    cid = (
        "bafkrei"
        + hashlib.sha256(f"{kind}|{sender}|{subject}|{on}|{ctx}|{salt}".encode()).hexdigest()[:52]
    )
    return ScoringEvent(type=kind, sender=sender, subject=subject, ctx=ctx, issued_at=at, cid=cid)


def member(name: str, *, days: int = 0, kyc: bool = True, attestations: int = 0) -> ScoringMember:
    return ScoringMember(
        did=did(name), since=AS_OF - timedelta(days=days), kyc=kyc, attestations=attestations
    )


def sparse_records(
    events: Sequence[ScoringEvent],
    members: Sequence[ScoringMember],
    rules: RuleSet,
    excluded: Sequence[str] = (),
    as_of: date = AS_OF,
) -> dict[str, ScoreRecord]:
    cols = columns_from_events(events, members, excluded, rules, as_of=as_of, ctx=CTX)
    return score_sparse(cols, rules, as_of=as_of, ctx=CTX).records()


def reference_records(
    events: Sequence[ScoringEvent],
    members: Sequence[ScoringMember],
    rules: RuleSet,
    excluded: Sequence[str] = (),
    as_of: date = AS_OF,
) -> dict[str, ScoreRecord]:
    return score_reference(events, members, excluded, rules, as_of=as_of, ctx=CTX)


def random_world(
    seed: int, nodes: int = 30, vouches: int = 120, reports: int = 20
) -> tuple[list[ScoringEvent], list[ScoringMember]]:
    """A random community: most nodes are members (some KYC, some revoked), vouches with
    repeats and ages over two years, and reports some of which fall in the window."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(nodes)]
    members = [
        ScoringMember(
            did=did(n),
            since=AS_OF - timedelta(days=rng.randrange(0, 800)),
            kyc=rng.random() < 0.8,
            revoked_on=(AS_OF - timedelta(days=rng.randrange(0, 30)))
            if rng.random() < 0.1
            else None,
            attestations=rng.randrange(0, 8),
        )
        for n in names
        if rng.random() < 0.85
    ]
    events: list[ScoringEvent] = []
    for x in range(vouches + reports):
        a, b = rng.sample(names, 2)
        kind: Literal["vouch", "report"] = "vouch" if x < vouches else "report"
        events.append(event(kind, did(a), did(b), rng.randrange(0, 730), salt=str(x)))
    return events, members
