"""Unit tests of credit_commons.ledger.checkpoint (C2SP tlog-checkpoint@v1.0.0)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credit_commons.ledger import note
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.errors import CheckpointInvalid, NoteInvalid, SignatureMissing
from credit_commons.ledger.rfc6962 import EMPTY_ROOT, MAX_TREE_SIZE, Hash, leaf_hash

ROOT = leaf_hash(b"root")
ORIGIN = "log.example/credit"
LOG = note.Ed25519Signer.from_private_key(
    ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
)
BODY = f"{ORIGIN}\n42\n{ROOT.b64()}\n"


def test_format_and_parse_round_trip() -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT, ("ext one", "ext two"))
    text = checkpoint.format()
    assert text == BODY + "ext one\next two\n"
    assert Checkpoint.parse(text) == checkpoint


def test_empty_tree() -> None:
    checkpoint = Checkpoint.parse(f"{ORIGIN}\n0\n{EMPTY_ROOT.b64()}\n")
    assert checkpoint.size == 0
    assert checkpoint.root_hash == EMPTY_ROOT


def test_largest_tree() -> None:
    checkpoint = Checkpoint.parse(f"{ORIGIN}\n{MAX_TREE_SIZE}\n{ROOT.b64()}\n")
    assert checkpoint.size == 2**64 - 1


def test_constructor_normalises_values() -> None:
    checkpoint = Checkpoint(ORIGIN, 1, bytes(ROOT), ["x"])  # type: ignore[arg-type]
    assert isinstance(checkpoint.root_hash, Hash)
    assert checkpoint.extensions == ("x",)
    with pytest.raises(FrozenInstanceError):
        checkpoint.size = 2  # type: ignore[misc]


def test_origin_need_not_look_like_a_url() -> None:
    # §Note text 1: clients MUST NOT assume the SHOULD-format of the origin.
    assert Checkpoint.parse(f"any origin + spaces\n1\n{ROOT.b64()}\n").origin == (
        "any origin + spaces"
    )


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("a\x00", 1, ROOT, ()),
        ("\ud800", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 2**64, ROOT, ()),
        (ORIGIN, True, ROOT, ()),
        (ORIGIN, 1, ROOT[:31], ()),
        (ORIGIN, 1, b"", ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("two\nlines",)),
    ],
    ids=repr,
)
def test_constructor_rejects(origin: str, size: int, root: bytes, extensions: tuple[str]) -> None:
    with pytest.raises(CheckpointInvalid):
        Checkpoint(origin, size, root, extensions)  # type: ignore[arg-type]


ROOT64 = ROOT.b64()


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"{ORIGIN}\n42\n{ROOT64}",  # no final newline
        f"{ORIGIN}\n42\n",  # two lines
        f"\n42\n{ROOT64}\n",  # empty origin
        f"{ORIGIN}\n\n{ROOT64}\n",
        f"{ORIGIN}\n42\n\n",
        f"{ORIGIN}\n042\n{ROOT64}\n",  # leading zero
        f"{ORIGIN}\n00\n{ROOT64}\n",
        f"{ORIGIN}\n-1\n{ROOT64}\n",
        f"{ORIGIN}\n+1\n{ROOT64}\n",
        f"{ORIGIN}\n 1\n{ROOT64}\n",
        f"{ORIGIN}\n1.0\n{ROOT64}\n",
        f"{ORIGIN}\n1_000\n{ROOT64}\n",
        f"{ORIGIN}\n\u0661\n{ROOT64}\n",  # Arabic-Indic digit one
        f"{ORIGIN}\n{2**64}\n{ROOT64}\n",
        f"{ORIGIN}\n42\n{ROOT64.rstrip('=')}\n",  # unpadded
        f"{ORIGIN}\n42\n{Hash(bytes(32)).b64()[:-2]}B=\n",  # non-canonical bits
        f"{ORIGIN}\n42\n{leaf_hash(b'x')[:31].hex()}\n",
        f"{ORIGIN}\n42\nAAAA\n",  # 3 bytes
        f"{ORIGIN}\n42\n{ROOT64}\n\n",  # empty extension line
        f"{ORIGIN}\n42\n{ROOT64}\next\n\nmore\n",
        f"{ORIGIN}\n42\n{ROOT64}\r\n",
        f"{ORIGIN}\t\n42\n{ROOT64}\n",
    ],
    ids=repr,
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(CheckpointInvalid):
        Checkpoint.parse(text)


class TestVerifyCheckpoint:
    def test_signed_by_the_log(self) -> None:
        signed = note.sign_note(BODY, LOG)
        checkpoint = verify_checkpoint(signed, LOG.verifier(), origin=ORIGIN)
        assert checkpoint == Checkpoint(ORIGIN, 42, ROOT)

    def test_other_signatures_are_ignored(self) -> None:
        foreign = note.Signature("witness.example", 5, bytes(72))
        signed = note.parse_note(note.sign_note(BODY, LOG)).with_signatures(foreign).format()
        assert verify_checkpoint(signed, LOG.verifier()).size == 42

    def test_wrong_origin(self) -> None:
        signed = note.sign_note(BODY, LOG)
        with pytest.raises(CheckpointInvalid, match="origin"):
            verify_checkpoint(signed, LOG.verifier(), origin="other.example")

    def test_wrong_key(self) -> None:
        other = note.Ed25519Signer.from_private_key(ORIGIN, Ed25519PrivateKey.generate())
        with pytest.raises(SignatureMissing):
            verify_checkpoint(note.sign_note(BODY, other), LOG.verifier())

    def test_signed_text_that_is_not_a_checkpoint(self) -> None:
        with pytest.raises(CheckpointInvalid):
            verify_checkpoint(note.sign_note("hello\n", LOG), LOG.verifier())

    def test_malformed_note(self) -> None:
        with pytest.raises(NoteInvalid):
            verify_checkpoint(BODY, LOG.verifier())
