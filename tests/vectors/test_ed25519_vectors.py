"""Ed25519 through the project's key API: Wycheproof verify cases and djb's sign.input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credit_commons.keys.algorithms import KeyType, PrivateKey, PublicKey
from credit_commons.keys.errors import KeyInvalid, SignatureInvalid

DIR = Path(__file__).parent / "keys" / "ed25519"
WYCHEPROOF = json.loads((DIR / "wycheproof_ed25519_test.json").read_text())
CASES = [
    (group["publicKey"]["pk"], test)
    for group in WYCHEPROOF["testGroups"]
    for test in group["tests"]
]
DJB = (DIR / "djb_sign.input.first128").read_text().splitlines()


def test_wycheproof_counts() -> None:
    assert WYCHEPROOF["numberOfTests"] == 151
    assert len(CASES) == 151
    assert sum(t["result"] == "invalid" for _, t in CASES) == 63


@pytest.mark.parametrize(("pk", "case"), CASES, ids=[f"tc{t['tcId']}" for _, t in CASES])
def test_wycheproof_case(pk: str, case: dict[str, object]) -> None:
    msg = bytes.fromhex(str(case["msg"]))
    sig = bytes.fromhex(str(case["sig"]))
    try:
        key = PublicKey.from_raw(KeyType.ED25519, bytes.fromhex(pk))
        key.verify("EdDSA", msg, sig)
        # RFC 9864's fully specified name must give the same verdict.
        key.verify("Ed25519", msg, sig)
    except (SignatureInvalid, KeyInvalid):
        assert case["result"] == "invalid", case["comment"]
    else:
        assert case["result"] == "valid", case["comment"]


def test_djb_vector_count() -> None:
    assert len(DJB) == 128


@pytest.mark.parametrize("line", DJB, ids=[f"line{i + 1}" for i in range(len(DJB))])
def test_djb_sign_input(line: str) -> None:
    sk_pk, pk_hex, msg_hex, sig_msg_hex, _ = line.split(":")
    seed, pk = bytes.fromhex(sk_pk)[:32], bytes.fromhex(pk_hex)
    msg = bytes.fromhex(msg_hex)
    expected_sig = bytes.fromhex(sig_msg_hex)[:64]
    signer = PrivateKey.from_raw(KeyType.ED25519, seed)
    assert signer.public_key.raw() == pk
    assert signer.sign(msg) == expected_sig
    signer.public_key.verify("EdDSA", msg, expected_sig)
    # Tampered siblings: a flipped message bit, signature bit or key bit must fail.
    with pytest.raises(SignatureInvalid):
        signer.public_key.verify("EdDSA", msg + b"\x00", expected_sig)
    bad_sig = bytearray(expected_sig)
    bad_sig[0] ^= 0x01
    with pytest.raises(SignatureInvalid):
        signer.public_key.verify("EdDSA", msg, bytes(bad_sig))
    other = PrivateKey.from_raw(KeyType.ED25519, bytes(b ^ 0xFF for b in seed)).public_key
    with pytest.raises(SignatureInvalid):
        other.verify("EdDSA", msg, expected_sig)
