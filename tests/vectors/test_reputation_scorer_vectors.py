"""The scorer's hand-computed vectors (tests/vectors/reputation/README.md has the arithmetic):
the reference and the sparse scorer each give exactly the expected factors, score and tier,
and the same record bytes; an excluded DID (``excluded``) has no record."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.unit.reputation.scorer_support import (
    AS_OF,
    CTX,
    did,
    event,
    reference_records,
    scoring_rules,
    sparse_records,
)

from credit_commons.reputation.scorer import ScoreRecord, ScoringMember

VECTORS = json.loads(
    (Path(__file__).parent / "reputation" / "scorer_vectors.json").read_text(encoding="utf-8")
)["vectors"]


def _inputs(vector: dict[str, Any]) -> tuple[list[Any], list[ScoringMember]]:
    members = [
        ScoringMember(
            did=did(m["name"]),
            since=AS_OF - timedelta(days=m["sinceDaysAgo"]),
            kyc=m["kyc"],
            attestations=m["attestations"],
        )
        for m in vector["members"]
    ]
    events = [
        event(e["type"], did(e["from"]), did(e["to"]), e["daysAgo"], salt=str(n))
        for n, e in enumerate(vector["events"])
    ]
    return events, members


def _observed(record: ScoreRecord) -> dict[str, Any]:
    document = record.as_json()
    return {
        "score": document["score"],
        "tier": document["tier"],
        **document["factors"],
        "diversity": document["diversity"],
        "collusionApplied": document["collusionApplied"],
    }


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    rules = scoring_rules(**vector["rules"])
    events, members = _inputs(vector)
    excluded = [did(name) for name in vector.get("excluded", [])]
    reference = reference_records(events, members, rules, excluded)
    sparse = sparse_records(events, members, rules, excluded)
    for name, expected in vector["expect"].items():
        assert _observed(reference[did(name)]) == expected, name
    for gone in excluded:
        assert gone not in reference
        assert gone not in sparse
    assert {d: r.to_jcs() for d, r in reference.items()} == {
        d: r.to_jcs() for d, r in sparse.items()
    }
    # Every record names the events it used: the subject's received vouches and counted reports.
    for name in vector["expect"]:
        record = reference[did(name)]
        assert record.ctx == CTX
        assert list(record.events) == sorted(record.events)


def test_boundary_siblings_differ() -> None:
    """Each ``…b`` vector is one step over a boundary of the vector before it: the cap's
    sibling gives the same score (the cap clips), every other sibling changes it."""
    by_name = {v["name"]: v for v in VECTORS}
    same = {"C1b-one-over-the-cap"}
    siblings = [n for n in by_name if n.split("-")[0].endswith("b")]
    assert len(siblings) == 7
    for name in siblings:
        stem = name.split("-")[0][:-1]
        (base,) = [v for v in VECTORS if v["name"].split("-")[0] == stem]
        subject = next(iter(base["expect"]))
        if name in same:
            assert by_name[name]["expect"][subject] == base["expect"][subject]
        else:
            assert by_name[name]["expect"][subject] != base["expect"][subject]


def test_exclusion_vectors_change_the_others_scores() -> None:
    """X1 and X2 are S3's graph with one voucher excluded: every subject left changes."""
    by_name = {v["name"]: v for v in VECTORS}
    chain = by_name["S3-chain-three-rounds"]["expect"]
    for name in ("X1-exclude-the-root-voucher", "X2-exclude-the-middle-voucher"):
        for subject, expected in by_name[name]["expect"].items():
            if subject == "C":
                assert expected == chain["C"]  # C receives nothing either way
            else:
                assert expected != chain[subject], (name, subject)
