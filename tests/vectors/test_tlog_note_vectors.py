"""Signed-note, checkpoint and cosignature vectors (tests/vectors/tlog/README.md).

* golang/mod sumdb/note (``derived/signed_note_golang.json``): the deterministic signer key
  reproduces the expected note byte for byte; good notes verify; the bad notes of Go's
  ``TestOpen`` (written inline below) and the bad and mangled keys of ``TestNewVerifier``
  and ``TestNewSigner`` are rejected.
* The C2SP spec examples (``derived/c2sp_spec_examples.json``): the signed note verifies
  under its vkey; the checkpoint and cosignature examples parse to the stated values and
  the cosigned message is the one printed in tlog-cosignature §Signed message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from credit_commons.ledger import cosignature, note
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.errors import (
    NoteInvalid,
    NoteSignatureInvalid,
    SignatureMissing,
    SignerKeyInvalid,
    VerifierKeyInvalid,
)

DERIVED = Path(__file__).parent / "tlog" / "derived"
GO: dict[str, Any] = json.loads((DERIVED / "signed_note_golang.json").read_text())
C2SP: dict[str, Any] = json.loads((DERIVED / "c2sp_spec_examples.json").read_text())

PETER = note.Ed25519Verifier.from_vkey(GO["peter_vkey"])
ENOCH = note.Ed25519Verifier.from_vkey(GO["enoch_vkey"])
TEXT: str = GO["text"]
PETER_SIG: str = GO["peter_sig_line"]
ENOCH_SIG: str = GO["enoch_sig_line"]

# golang/mod sumdb/note/note_test.go TestOpen: "Invalid encoded message syntax".
BAD_NOTES: list[tuple[str, bytes]] = [
    ("text-only", TEXT.encode()),
    ("no-signatures", (TEXT + "\n").encode()),
    ("no-final-newline", (TEXT + "\n" + PETER_SIG[:-1]).encode()),
    ("control-character", ("\x01" + TEXT + "\n" + PETER_SIG).encode()),
    ("invalid-utf8", b"\xff" + (TEXT + "\n" + PETER_SIG).encode()),
    ("space-in-name", (TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name")).encode()),
    ("unexpected-line", (TEXT + "\n" + PETER_SIG + "Unexpected line.\n").encode()),
    ("too-many-signatures", (TEXT + "\n" + PETER_SIG * 101).encode()),
]


def test_signer_key_reproduces_the_expected_note() -> None:
    signer = note.Ed25519Signer.from_skey(GO["skey"])
    assert signer.name == "PeterNeumann"
    assert signer.key_id == 0xC74F20A3
    assert signer.verifier() == PETER
    assert signer.verifier().vkey == GO["peter_vkey"]
    assert note.sign_note(TEXT, signer) == GO["signed_note_expected"]


def test_expected_note_verifies() -> None:
    opened = note.verify_note(GO["signed_note_expected"], [PETER])
    assert opened.text == TEXT
    assert [s.line() for s in opened.verified] == [PETER_SIG]
    assert opened.unverified == ()


def test_one_known_key_verifies_and_the_other_is_ignored() -> None:
    opened = note.verify_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER])
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert [s.name for s in opened.unverified] == ["EnochRoot"]


def test_both_known_keys_verify() -> None:
    opened = note.verify_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER, ENOCH])
    assert [s.name for s in opened.verified] == ["PeterNeumann", "EnochRoot"]
    assert opened.unverified == ()


def test_no_known_key_is_rejected() -> None:
    with pytest.raises(SignatureMissing):
        note.verify_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])


def test_duplicated_signatures_are_listed_once() -> None:
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    data = TEXT + "\n" + PETER_SIG * 2 + ENOCH_SIG * 2 + enoch_abcd
    opened = note.verify_note(data, [PETER])
    assert [s.line() for s in opened.verified] == [PETER_SIG]
    assert [s.line() for s in opened.unverified] == [ENOCH_SIG, enoch_abcd]


def test_invalid_signature_by_a_known_key_rejects_the_note() -> None:
    with pytest.raises(NoteSignatureInvalid):
        note.verify_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [PETER])


@pytest.mark.parametrize(("name", "data"), BAD_NOTES, ids=[n for n, _ in BAD_NOTES])
def test_bad_note_is_rejected(name: str, data: bytes) -> None:
    with pytest.raises(NoteInvalid):
        note.verify_note(data, [PETER])


@pytest.mark.parametrize("vkey", GO["bad_vkeys"])
def test_bad_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(VerifierKeyInvalid):
        note.Ed25519Verifier.from_vkey(vkey)


def _manglings(key: str) -> list[str]:
    # note_test.go TestNewVerifier / TestNewSigner: every proper substring, and every
    # single-byte increment, of a good key must be rejected.
    subs = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)}
    subs.discard(key)
    bumped = {key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))}
    return sorted(subs | bumped)


def test_mangled_verifier_keys_are_rejected() -> None:
    manglings = _manglings(GO["peter_vkey"])
    assert len(manglings) > 2000
    for vkey in manglings:
        with pytest.raises(VerifierKeyInvalid):
            note.Ed25519Verifier.from_vkey(vkey)


def test_mangled_signer_keys_are_rejected() -> None:
    manglings = _manglings(GO["skey"])
    assert len(manglings) > 3000
    for skey in manglings:
        with pytest.raises(SignerKeyInvalid):
            note.Ed25519Signer.from_skey(skey)


def test_c2sp_signed_note_example() -> None:
    example = C2SP["signed_note_example"]
    verifier = note.Ed25519Verifier.from_vkey(example["vkey"])
    assert verifier.key_id == 0x530D903A
    assert verifier.vkey == example["vkey"]
    opened = note.verify_note(example["note"], [verifier])
    assert opened.text == "This is an example message.\n"
    assert note.parse_note(example["note"]).format() == example["note"]


def test_c2sp_signed_note_example_tampered() -> None:
    example = C2SP["signed_note_example"]
    verifier = note.Ed25519Verifier.from_vkey(example["vkey"])
    with pytest.raises(NoteSignatureInvalid):
        note.verify_note(example["note"].replace("example message", "example massage"), [verifier])
    with pytest.raises(SignatureMissing):
        note.verify_note(
            example["note"].replace("example.com/foo ", "example.com/bar "), [verifier]
        )


def test_c2sp_checkpoint_example() -> None:
    parsed = note.parse_note(C2SP["checkpoint_example"])
    checkpoint = Checkpoint.parse(parsed.text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash.b64() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert checkpoint.extensions == ()
    assert checkpoint.format() == parsed.text
    (log_signature,) = parsed.signatures
    assert log_signature.name == checkpoint.origin
    assert len(log_signature.signature) == 64


def test_c2sp_cosignature_example() -> None:
    line: str = C2SP["cosignature_example_line"]
    signature = note.Signature.parse_line(line)
    assert signature.name == "witness.example.com/w1"
    stamped = cosignature.TimestampedSignature.from_bytes(signature.signature)
    assert stamped.timestamp == C2SP["cosignature_example_timestamp"] == 1679315147
    # The note in tlog-cosignature §Format: the checkpoint example plus this line.
    cosigned = note.parse_note(C2SP["checkpoint_example"] + line + "\n")
    assert cosigned.signatures[1] == signature
    # tlog-cosignature §Signed message, as printed in the spec.
    assert cosignature.cosigned_message(cosigned.text, stamped.timestamp) == (
        b"cosignature/v1\n"
        b"time 1679315147\n"
        b"example.com/behind-the-sofa\n"
        b"20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
