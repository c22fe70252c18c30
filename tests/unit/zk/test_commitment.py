"""Commitments, salts and the field-element encoding (credit_commons.zk)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_commons.zk import (
    ARTEFACTS_DIR,
    FIELD_MODULUS,
    SALT_BITS,
    VALUE_BITS,
    FieldElementInvalid,
    NodeUnavailable,
    NodeWorker,
    commit,
    decode_element,
    encode_element,
    hash2,
    new_salt,
)


def test_commit_is_the_poseidon_of_value_and_salt() -> None:
    salt = new_salt(random.Random(7).getrandbits)
    c = commit(650, salt)
    assert c == hash2(650, salt)
    assert 0 <= c < FIELD_MODULUS
    assert commit(650, salt) == c  # deterministic
    assert commit(651, salt) != c
    assert commit(650, salt ^ 1) != c


def test_salts_are_248_bits_from_the_source_given() -> None:
    assert new_salt(lambda bits: (1 << bits) - 1) == (1 << SALT_BITS) - 1
    assert new_salt(random.Random(1).getrandbits) == new_salt(random.Random(1).getrandbits)
    assert new_salt() != new_salt()


@pytest.mark.parametrize("value", [-1, 2**VALUE_BITS, True, 1.0, "650", None])
def test_values_out_of_bounds_are_refused(value: object) -> None:
    with pytest.raises(FieldElementInvalid):
        commit(value, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("salt", [-1, 2**SALT_BITS, False, "1"])
def test_salts_out_of_bounds_are_refused(salt: object) -> None:
    with pytest.raises(FieldElementInvalid):
        commit(1, salt)  # type: ignore[arg-type]


def test_the_value_bounds_themselves_are_accepted() -> None:
    assert commit(0, 0) != commit(2**VALUE_BITS - 1, 2**SALT_BITS - 1)


@pytest.mark.parametrize(
    "text",
    ["", "-1", "+1", "01", " 1", "1 ", "0x1", "1e3", "1.0", str(FIELD_MODULUS), "٣", None, 1],
)
def test_non_canonical_elements_are_refused(text: object) -> None:
    with pytest.raises(FieldElementInvalid):
        decode_element(text)


def test_encoding_refuses_elements_outside_the_field() -> None:
    for value in (-1, FIELD_MODULUS, True):
        with pytest.raises(FieldElementInvalid):
            encode_element(value)


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=FIELD_MODULUS - 1))
def test_encoding_round_trips(value: int) -> None:
    assert decode_element(encode_element(value)) == value


@settings(max_examples=25)
@given(st.integers(0, 2**VALUE_BITS - 1), st.integers(0, 2**VALUE_BITS - 1))
def test_distinct_values_under_one_salt_commit_differently(a: int, b: int) -> None:
    salt = 12345
    assert (commit(a, salt) == commit(b, salt)) == (a == b)


def test_missing_node_is_a_clear_error(tmp_path: Path) -> None:
    with NodeWorker(node_dir=tmp_path) as worker, pytest.raises(NodeUnavailable) as caught:
        commit(1, 1, worker=worker)
    assert "npm ci" in (caught.value.hint or "")
    with NodeWorker(node=str(tmp_path / "no-node")) as worker, pytest.raises(NodeUnavailable):
        commit(1, 1, worker=worker)


def test_a_worker_survives_a_refused_request_and_restarts_after_close() -> None:
    with NodeWorker() as worker:
        assert worker.call({"op": "nonsense"})["ok"] is False
        assert commit(5, 6, worker=worker) == commit(5, 6)
        worker.close()
        assert commit(5, 6, worker=worker) == commit(5, 6)


def test_a_worker_that_does_not_answer_in_time_is_stopped_and_replaced() -> None:
    # A proof takes far longer than a millisecond: the call gives up and stops the process;
    # the next call starts a fresh one.
    request = {"op": "prove", "wasm": str(ARTEFACTS_DIR / "member_of_group.wasm"),
               "zkey": str(ARTEFACTS_DIR / "member_of_group.zkey"), "input": {}}  # fmt: skip
    with NodeWorker(timeout=0.001) as worker:
        with pytest.raises(NodeUnavailable, match="did not answer"):
            worker.call(request)
        with pytest.raises(NodeUnavailable, match="did not answer"):
            worker.call(request)
    with NodeWorker() as worker:
        assert commit(5, 6, worker=worker) == commit(5, 6)
