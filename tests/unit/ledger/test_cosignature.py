"""Unit tests of credit_commons.ledger.cosignature (C2SP tlog-cosignature@v1.0.1)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credit_commons.core.errors import ValidationError
from credit_commons.ledger import cosignature, note
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.cosignature import CosignatureSigner, CosignatureVerifier
from credit_commons.ledger.errors import (
    CheckpointInvalid,
    LogError,
    NoteSignatureInvalid,
    QuorumNotMet,
    SignatureMissing,
    SignerKeyInvalid,
    VerifierKeyInvalid,
)
from credit_commons.ledger.rfc6962 import leaf_hash


def _key(i: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32)


ORIGIN = "log.example/credit"
LOG = note.Ed25519Signer.from_private_key(ORIGIN, _key(1))
W1 = CosignatureSigner.from_private_key("w1.example", _key(2))
W2 = CosignatureSigner.from_private_key("w2.example", _key(3))
W3 = CosignatureSigner.from_private_key("w3.example", _key(4))
WITNESSES = [W1.verifier(), W2.verifier(), W3.verifier()]
BODY = Checkpoint(ORIGIN, 1000, leaf_hash(b"r"), ("an extension",)).format()
T = 1_700_000_000


def _cosigned(*signatures: note.Signature, body: str = BODY) -> str:
    logged = note.parse_note(note.sign_note(body, LOG))
    return logged.with_signatures(*signatures).format()


def test_key_id_uses_signature_type_4() -> None:
    public = W1.public_key
    digest = hashlib.sha256(b"w1.example\n\x04" + public).digest()
    assert W1.key_id == int.from_bytes(digest[:4], "big")
    assert W1.verifier().key_id == W1.key_id
    assert W1.key_id != note.Ed25519Verifier("w1.example", public).key_id


def test_vkey_round_trip() -> None:
    verifier = W1.verifier()
    assert note.split_vkey(verifier.vkey) == ("w1.example", W1.key_id, 0x04, W1.public_key)
    assert CosignatureVerifier.from_vkey(verifier.vkey) == verifier
    with pytest.raises(VerifierKeyInvalid, match="cosignature"):
        CosignatureVerifier.from_vkey(LOG.verifier().vkey)
    with pytest.raises(VerifierKeyInvalid):
        note.Ed25519Verifier.from_vkey(verifier.vkey)


def test_cosigned_message_layout() -> None:
    assert cosignature.cosigned_message(BODY, 0) == b"cosignature/v1\ntime 0\n" + BODY.encode()
    assert cosignature.cosigned_message(BODY, 2**63 - 1).startswith(
        b"cosignature/v1\ntime 9223372036854775807\n"
    )


@pytest.mark.parametrize("timestamp", [-1, 2**63, True])
def test_cosigned_message_rejects_timestamps(timestamp: int) -> None:
    with pytest.raises(CheckpointInvalid):
        cosignature.cosigned_message(BODY, timestamp)


def test_cosigned_message_needs_a_checkpoint() -> None:
    with pytest.raises(CheckpointInvalid):
        cosignature.cosigned_message("not a checkpoint\n", T)


def test_signature_bytes_layout() -> None:
    sig = W1.cosign(BODY, T)
    assert sig.name == "w1.example"
    assert sig.key_id == W1.key_id
    assert len(sig.signature) == 72
    assert sig.signature[:8] == T.to_bytes(8, "big")
    stamped = cosignature.TimestampedSignature.from_bytes(sig.signature)
    assert stamped.timestamp == T
    assert stamped.to_bytes() == sig.signature
    _key(2).public_key().verify(stamped.signature, cosignature.cosigned_message(BODY, T))


@pytest.mark.parametrize(
    "data", [b"", bytes(71), bytes(73), (2**63).to_bytes(8, "big") + bytes(64)], ids=len
)
def test_timestamped_signature_rejects(data: bytes) -> None:
    with pytest.raises(NoteSignatureInvalid):
        cosignature.TimestampedSignature.from_bytes(data)


class TestVerifyCosigned:
    def test_quorum_met(self) -> None:
        data = _cosigned(W1.cosign(BODY, T), W3.cosign(BODY, T + 5))
        result = cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 2, origin=ORIGIN)
        assert result.checkpoint == Checkpoint.parse(BODY)
        assert result.text == BODY
        assert [(c.name, c.timestamp) for c in result.cosigners] == [
            ("w1.example", T),
            ("w3.example", T + 5),
        ]

    def test_quorum_not_met(self) -> None:
        data = _cosigned(W1.cosign(BODY, T), W3.cosign(BODY, T))
        with pytest.raises(QuorumNotMet) as info:
            cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 3)
        assert info.value.extra == {"cosigned": 2, "required": 3}

    def test_log_signature_required(self) -> None:
        data = note.Note(BODY, (W1.cosign(BODY, T), W2.cosign(BODY, T))).format()
        with pytest.raises(SignatureMissing, match="log"):
            cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 1)

    def test_one_key_under_two_names_counts_once(self) -> None:
        alias = CosignatureSigner.from_private_key("alias.example", _key(2))
        data = _cosigned(W1.cosign(BODY, T), alias.cosign(BODY, T))
        witnesses = [W1.verifier(), alias.verifier(), W2.verifier()]
        with pytest.raises(QuorumNotMet):
            cosignature.verify_cosigned(data, LOG.verifier(), witnesses, 2)

    def test_repeated_cosignature_counts_once(self) -> None:
        data = _cosigned(W1.cosign(BODY, T), W1.cosign(BODY, T + 1))
        result = cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 1)
        assert len(result.cosigners) == 1
        with pytest.raises(QuorumNotMet):
            cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 2)

    def test_unknown_witness_is_ignored(self) -> None:
        stranger = CosignatureSigner.from_private_key("stranger.example", _key(9))
        data = _cosigned(stranger.cosign(BODY, T), W2.cosign(BODY, T))
        assert len(cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 1).cosigners) == 1

    def test_plain_note_signature_by_a_witness_key_is_not_a_cosignature(self) -> None:
        plain = note.sign_text(BODY, note.Ed25519Signer.from_private_key("w1.example", _key(2)))
        with pytest.raises(QuorumNotMet):
            cosignature.verify_cosigned(_cosigned(plain), LOG.verifier(), WITNESSES, 1)

    def test_changed_timestamp_is_rejected(self) -> None:
        good = W1.cosign(BODY, T)
        moved = note.Signature(
            good.name, good.key_id, (T + 1).to_bytes(8, "big") + good.signature[8:]
        )
        with pytest.raises(NoteSignatureInvalid):
            cosignature.verify_cosigned(_cosigned(moved), LOG.verifier(), WITNESSES, 1)

    def test_timestamp_beyond_the_limit_is_rejected(self) -> None:
        good = W1.cosign(BODY, T)
        huge = note.Signature(
            good.name, good.key_id, (2**63).to_bytes(8, "big") + good.signature[8:]
        )
        with pytest.raises(NoteSignatureInvalid):
            cosignature.verify_cosigned(_cosigned(huge), LOG.verifier(), WITNESSES, 1)

    def test_cosignature_of_another_checkpoint_is_rejected(self) -> None:
        other = Checkpoint(ORIGIN, 1001, leaf_hash(b"r2")).format()
        with pytest.raises(NoteSignatureInvalid):
            cosignature.verify_cosigned(
                _cosigned(W1.cosign(other, T)), LOG.verifier(), WITNESSES, 1
            )

    def test_extension_lines_are_covered(self) -> None:
        stripped = Checkpoint.parse(BODY)
        without = Checkpoint(stripped.origin, stripped.size, stripped.root_hash).format()
        data = _cosigned(W1.cosign(without, T))
        with pytest.raises(NoteSignatureInvalid):
            cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 1)

    def test_wrong_origin(self) -> None:
        data = _cosigned(W1.cosign(BODY, T))
        with pytest.raises(CheckpointInvalid, match="origin"):
            cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, 1, origin="x.example")

    def test_body_that_is_not_a_checkpoint(self) -> None:
        with pytest.raises(CheckpointInvalid):
            cosignature.verify_cosigned(
                note.sign_note("hello\n", LOG), LOG.verifier(), WITNESSES, 1
            )

    @pytest.mark.parametrize("k", [0, -1, 4, True])
    def test_policy_must_be_satisfiable(self, k: int) -> None:
        data = _cosigned(W1.cosign(BODY, T))
        with pytest.raises(ValidationError, match="quorum"):
            cosignature.verify_cosigned(data, LOG.verifier(), WITNESSES, k)

    def test_no_witnesses_is_not_a_policy(self) -> None:
        with pytest.raises(ValidationError):
            cosignature.verify_cosigned(_cosigned(W1.cosign(BODY, T)), LOG.verifier(), [], 1)


class TestSigner:
    def test_raw_signer_returning_garbage(self) -> None:
        class Broken:
            def sign(self, message: bytes, /) -> bytes:
                return bytes(63)

        with pytest.raises(LogError, match="64 bytes"):
            CosignatureSigner("w", W1.public_key, Broken()).cosign(BODY, T)

    @pytest.mark.parametrize(("name", "public"), [("a b", bytes(32)), ("w", bytes(33))])
    def test_rejects_bad_identity(self, name: str, public: bytes) -> None:
        with pytest.raises(SignerKeyInvalid):
            CosignatureSigner(name, public, _key(2))

    def test_cosign_rejects_bad_input(self) -> None:
        with pytest.raises(CheckpointInvalid):
            W1.cosign("hello\n", T)
        with pytest.raises(CheckpointInvalid):
            W1.cosign(BODY, -1)
