"""Rule-set hash vectors (tests/vectors/reputation/rules/README.md): the contract's example
hashes to the written SHA-256 of its written JCS bytes, its decimals become the written
micro-units, and each sibling keeps or changes the hash as written."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from credit_commons.core.encoding import canonical_json
from credit_commons.reputation import parse_rule_set, rule_set_hash

HERE = Path(__file__).parent / "reputation" / "rules"
VECTORS: dict[str, Any] = json.loads((HERE / "vectors.json").read_text())
DOCUMENT: dict[str, Any] = json.loads((HERE / VECTORS["rule_set"]).read_text())
DEV = Path(__file__).parents[2] / "src" / "credit_commons" / "reputation" / "dev_rules.json"


def _changed(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOCUMENT)
    *parents, last = path.split("/")
    node = doc
    for part in parents:
        node = node[part]
    node[last] = value
    return doc


def test_the_example_hashes_as_written() -> None:
    assert json.loads(DEV.read_text()) == DOCUMENT
    jcs = (HERE / VECTORS["jcs"]).read_bytes()
    assert len(jcs) == VECTORS["jcs_length"]
    assert canonical_json(DOCUMENT) == jcs
    rules = parse_rule_set(DOCUMENT)
    assert rules.canonical == jcs
    assert rule_set_hash(rules) == rules.hash == VECTORS["sha256"]
    assert rules.ref() == VECTORS["ref"]


def test_decimals_become_the_written_micro_units() -> None:
    rules = parse_rule_set(DOCUMENT)
    tiers = {t.name: t.min_score for t in rules.aura.tiers}
    found = {
        "weights.alpha": rules.weights.alpha,
        "weights.beta": rules.weights.beta,
        "weights.gamma": rules.weights.gamma,
        "weights.delta": rules.weights.delta,
        "weights.tau": rules.weights.tau,
        "caps.voucherScore": rules.caps.voucher_score,
        "aura.perCounterpartyDecayExponent": rules.aura.per_counterparty_decay_exponent,
        "aura.collusion.top2Threshold": rules.aura.collusion.top2_threshold,
        "aura.collusion.multiplier": rules.aura.collusion.multiplier,
        **{f"aura.tiers.{name}": micro for name, micro in tiers.items()},
    }
    assert found == VECTORS["micro"]


def test_siblings_keep_or_change_the_hash_as_written() -> None:
    (same,) = VECTORS["same_hash"]
    assert same["reverse_members"]
    reordered = dict(reversed(list(DOCUMENT.items())))
    reordered["aura"] = dict(reversed(list(DOCUMENT["aura"].items())))
    assert parse_rule_set(reordered).hash == VECTORS["sha256"]
    hashes = {VECTORS["sha256"]}
    for sibling in VECTORS["other_hash"]:
        digest = parse_rule_set(_changed(sibling["path"], sibling["value"])).hash
        assert digest not in hashes, sibling["why"]
        hashes.add(digest)
