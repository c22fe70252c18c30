"""The public log explorer's pure parts (web/audit.py, web/audit_checks.py): a pasted note
made a signed note again, a receipt's shape said in plain words, and each cosignature on a
checkpoint checked with the witness key the platform knows by its name and key id."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.cosignature import CosignatureSigner
from credit_commons.ledger.identity import LogIdentity
from credit_commons.ledger.note import Ed25519Signer, parse_note, sign_note
from credit_commons.ledger.rfc6962 import Hash
from credit_commons.web.audit import _parse_receipt, _pasted
from credit_commons.web.audit_checks import witness_lines

ORIGIN = "log.example/test"


def test_a_pasted_note_is_the_note_again() -> None:
    note = "origin\n3\nroot=\n\n— origin AAAA\n"
    assert _pasted(note.replace("\n", "\r\n").strip()) == note
    assert _pasted("\n\n" + note + "\n\n") == note


def _receipt(**members: object) -> str:
    base: dict[str, object] = {
        "format": "credit-commons-receipt/v1",
        "entry": "{}",
        "index": 0,
        "inclusion_proof": [],
        "checkpoint": "x\n",
    }
    base.update(members)
    return json.dumps({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nope", "not valid JSON (line %(line)s"),
        ("[" * 3000, "it is not valid JSON."),
        ('"text"', "A receipt is a JSON object"),
        (_receipt(format="v2"), '"format" is not'),
        (_receipt(entry=None), 'has no "entry"'),
        (_receipt(entry=7), 'has no "entry"'),
        (_receipt(index=True), '"index" must be'),
        (_receipt(index="0"), '"index" must be'),
        (_receipt(inclusion_proof="abc"), '"inclusion_proof" must be'),
        (_receipt(checkpoint=None), 'neither a "checkpoint" nor a "signed_entry"'),
        (_receipt(checkpoint=None, signed_entry=3), 'neither a "checkpoint"'),
    ],
)
def test_a_receipt_of_the_wrong_shape_is_said_in_plain_words(text: str, expected: str) -> None:
    document, (message, _values) = _parse_receipt(text)
    assert document is None
    assert expected in message


def test_brackets_inside_a_string_do_not_count_as_nesting() -> None:
    # The depth check is core.encoding's (json_nesting_exceeds), which skips strings even
    # when one is left open: the visitor is told where the JSON breaks, not "too deep".
    text = '{"entry": "' + "[" * 40
    document, (message, values) = _parse_receipt(text)
    assert document is None
    assert message.endswith("(line %(line)s, column %(column)s).")
    assert values == {"line": 1, "column": 11}
    # Forty brackets in a closed string are not nesting either: the shape is checked next.
    document, (message, _values) = _parse_receipt(_receipt(entry="[" * 40))
    assert document is not None, message


def test_receipts_of_the_right_shape_go_to_the_checks() -> None:
    document, _ = _parse_receipt(_receipt())
    assert document is not None
    pending, _ = _parse_receipt(_receipt(checkpoint=None, signed_entry="note\n"))
    assert pending is not None


def _identity(key: Ed25519PrivateKey) -> LogIdentity:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return LogIdentity(ORIGIN, "log", "kid", public)


def test_each_cosignature_is_checked_with_the_known_key_of_its_name() -> None:
    log_key = Ed25519PrivateKey.generate()
    text = Checkpoint(ORIGIN, 5, Hash(bytes(32))).format()
    note = parse_note(sign_note(text, Ed25519Signer.from_private_key(ORIGIN, log_key)))
    known = CosignatureSigner.from_private_key("w.example/1", Ed25519PrivateKey.generate())
    silent = CosignatureSigner.from_private_key("w.example/2", Ed25519PrivateKey.generate())
    stranger = CosignatureSigner.from_private_key("w.example/x", Ed25519PrivateKey.generate())
    cosigned = note.with_signatures(
        known.cosign(text, 1_700_000_000), stranger.cosign(text, 1_700_000_001)
    ).format()
    verifiers = {(s.name, s.key_id): s.verifier() for s in (known, silent)}
    lines, quiet = witness_lines(cosigned, _identity(log_key), verifiers)
    assert [(line.name, line.status) for line in lines] == [
        ("w.example/1", "verified"),
        ("w.example/x", "unknown"),
    ]
    assert lines[0].key_id == f"{known.key_id:08x}"
    assert lines[0].time is not None
    assert int(lines[0].time.timestamp()) == 1_700_000_000
    assert quiet == ("w.example/2",)
    # A line in the known witness's name and key id, signed by another key: not verified.
    forged = CosignatureSigner("w.example/1", known.public_key, stranger.raw)
    bad = note.with_signatures(forged.cosign(text, 1_700_000_002)).format()
    (line,), _ = witness_lines(bad, _identity(log_key), verifiers)
    assert line.status == "invalid"
