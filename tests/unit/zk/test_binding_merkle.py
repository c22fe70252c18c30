"""The request binding and the group Merkle tree (credit_commons.zk)."""

from __future__ import annotations

import hashlib
import json

import pytest

from credit_commons.zk import FIELD_MODULUS, FieldElementInvalid, hash2
from credit_commons.zk.binding import request_binding
from credit_commons.zk.merkle import GROUP_TREE_DEPTH, merkle_path, merkle_root


def test_binding_is_sha256_of_the_canonical_json_reduced_into_the_field() -> None:
    parts = {"audience": "https://lender.example", "nonce": "n-1", "request_hash": "abc"}
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    expected = int.from_bytes(hashlib.sha256(canonical).digest(), "big") % FIELD_MODULUS
    assert request_binding(**parts) == expected


def test_each_part_of_the_binding_matters() -> None:
    base = {"audience": "a", "nonce": "n", "request_hash": "h"}
    values = {request_binding(**base)}
    for name, value in base.items():
        values.add(request_binding(**{**base, name: value + "x"}))
    values.add(request_binding(audience="n", nonce="a", request_hash="h"))  # swapped
    assert len(values) == 5


@pytest.mark.parametrize("bad", ["", None, 1])
def test_binding_parts_must_be_non_empty_strings(bad: object) -> None:
    with pytest.raises(FieldElementInvalid):
        request_binding(nonce=bad, audience="a", request_hash="h")  # type: ignore[arg-type]


def _naive_root(ids: list[int]) -> int:
    level = sorted(ids) + [0] * (2**GROUP_TREE_DEPTH - len(ids))
    while len(level) > 1:
        level = [hash2(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def test_root_and_paths_agree() -> None:
    ids = [7, 3, 11]
    root = merkle_root(ids)
    assert root == _naive_root(ids)
    assert merkle_root([11, 3, 7, 3]) == root  # a set: order and repeats do not matter
    for group in ids:
        path = merkle_path(ids, group)
        node = group
        for sibling, side in zip(path.elements, path.indices, strict=True):
            node = hash2(sibling, node) if side else hash2(node, sibling)
        assert node == root


@pytest.mark.parametrize("ids", [[], [0], [-1], [2**64], list(range(1, 2**GROUP_TREE_DEPTH + 2))])
def test_bad_sets_are_refused(ids: list[int]) -> None:
    with pytest.raises(FieldElementInvalid):
        merkle_root(ids)


def test_a_path_for_an_absent_id_is_refused() -> None:
    with pytest.raises(FieldElementInvalid):
        merkle_path([1, 2], 3)
    with pytest.raises(FieldElementInvalid):
        merkle_path([1, 2], 0)
