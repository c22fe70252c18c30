"""ZK statements, pure: documents that are refused field by field, and the signed token's
negative cases (another key, another ``typ``, a flipped bit, ``alg: none``, an edited
payload) — each refused by :func:`verify_statement`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.zk.statement import (
    StatementInvalid,
    StatementSignatureInvalid,
    parse_statement,
    sign_statement,
    statement_kid,
    verify_statement,
)

HEX = "ab" * 32


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "age_at_least",
        "version": 1,
        "proof_system": "groth16",
        "curve": "bls12-381",
        "artefacts": {
            "wasm": {"file": "age_at_least.wasm", "sha256": HEX},
            "zkey": {"file": "age_at_least.zkey", "sha256": HEX},
            "vkey": {"file": "age_at_least.vkey.json", "sha256": HEX},
        },
        "public_inputs": [
            {"name": "commitment", "source": "commitment"},
            {"name": "today", "source": "verifier_day", "max_drift_days": 1},
            {"name": "min_age_days", "source": "param", "param": "min_age_days"},
            {"name": "binding", "source": "binding"},
        ],
        "required_bindings": ["nonce", "audience", "request_hash"],
        "params": {"min_age_days": {"min": 0, "max": 50000}},
        "credential": {
            "vct": "https://credit-commons.dev/vct/identity/v1",
            "claim": "/birth_date",
            "encoding": "date_days",
            "commitment": "birth_date",
        },
        "setup_provenance": "dev",
    }
    doc.update(changes)
    return doc


def test_a_document_parses_and_round_trips() -> None:
    statement = parse_statement(document())
    assert statement.input_index("commitment") == 0
    assert statement.input_index("binding") == 3
    assert parse_statement(statement.document()) == statement


def _without(key: str) -> dict[str, Any]:
    doc = document()
    del doc[key]
    return doc


def _input_changed(index: int, **changes: Any) -> dict[str, Any]:
    doc = document()
    doc["public_inputs"] = copy.deepcopy(doc["public_inputs"])
    doc["public_inputs"][index].update(changes)
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        _without("setup_provenance"),
        _without("credential"),
        document(setup_provenance="trusted_by_me"),
        document(proof_system="plonk"),
        document(curve="bn254"),
        document(required_bindings=["nonce", "audience"]),
        document(version=0),
        document(id="Age"),
        document(extra="member"),
        document(artefacts={"wasm": {"file": "a.wasm", "sha256": HEX}}),
        document(artefacts={**document()["artefacts"], "vkey": {"file": "../x", "sha256": HEX}}),
        document(artefacts={**document()["artefacts"], "vkey": {"file": "v", "sha256": "AB"}}),
        document(params={}),  # an input names a param the statement does not have
        document(params={"min_age_days": {}, "other": {}}),  # a param no input reads
        _input_changed(3, source="commitment"),  # two commitments, no binding
        _input_changed(1, max_drift_days=None),  # a day without its drift bound
        _input_changed(2, param=None),  # a param input naming no parameter
        _input_changed(2, name="commitment"),  # input names are unique
        document(credential={**document()["credential"], "encoding": "enum_index"}),
        document(credential={**document()["credential"], "claim": "birth_date"}),
        [],
        "a statement",
    ],
)
def test_a_document_that_is_not_acceptable_is_refused(doc: Any) -> None:
    with pytest.raises(StatementInvalid):
        parse_statement(doc)


KEY = PrivateKey.generate(KeyType.ED25519)


def _token() -> str:
    return sign_statement(
        parse_statement(document()), iss="https://commons.test", iat=1, signer=KEY, kid="k1"
    )


def test_a_signed_statement_verifies_under_its_key() -> None:
    token = _token()
    assert statement_kid(token) == "k1"
    signed = verify_statement(token, KEY.public_key, iss="https://commons.test")
    assert signed.statement.id == "age_at_least"
    assert (signed.iss, signed.iat) == ("https://commons.test", 1)


def _flip(token: str, part: int) -> str:
    pieces = token.split(".")
    raw = bytearray(b64url_decode(pieces[part]))
    raw[len(raw) // 2] ^= 0x01
    pieces[part] = b64url_encode(bytes(raw))
    return ".".join(pieces)


def _header(token: str, header: dict[str, Any]) -> str:
    return ".".join([b64url_encode(canonical_json(header)), *token.split(".")[1:]])


def _payload(token: str, payload: dict[str, Any]) -> str:
    head, _, signature = token.split(".")
    return f"{head}.{b64url_encode(canonical_json(payload))}.{signature}"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: _flip(t, 2),
        lambda t: _flip(t, 1),
        lambda t: _header(t, {"alg": "none", "typ": "zk-statement+jwt", "kid": "k1"}),
        lambda t: _header(t, {"alg": "EdDSA", "typ": "JWT", "kid": "k1"}),
        lambda t: _payload(
            t, {"iss": "https://commons.test", "iat": 1, "statement": document(version=9)}
        ),
        lambda t: t + ".x",
        lambda t: "",
    ],
)
def test_a_tampered_token_is_refused(tamper: Any) -> None:
    with pytest.raises(StatementSignatureInvalid):
        verify_statement(tamper(_token()), KEY.public_key)


def test_another_key_or_issuer_is_refused() -> None:
    with pytest.raises(StatementSignatureInvalid):
        verify_statement(_token(), PrivateKey.generate(KeyType.ED25519).public_key)
    with pytest.raises(StatementSignatureInvalid):
        verify_statement(_token(), KEY.public_key, iss="https://other.example")
