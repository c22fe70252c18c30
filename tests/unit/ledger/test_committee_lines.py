"""A full node's sorting of a checkpoint note's committee lines (ledger/committee_lines.py):
a line verified under a pinned group key is kept; a line under a key not pinned, a flipped
bit, a truncated signature, a line moved to another note, and a line whose name or key ID
is changed are removed and counted; the log's and the witnesses' lines are left alone."""

from __future__ import annotations

import pytest

from credit_commons.ledger import CommitteeVerifier, sort_committee_lines
from credit_commons.ledger.committee import add_committee_signature, combine
from credit_commons.ledger.committee_setup import deal_files
from credit_commons.ledger.note import (
    Ed25519Signer,
    Note,
    Signature,
    generate_key,
    parse_note,
    sign_note,
)

TEXT = "example.com/log\n12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
GROUP, SHARES = deal_files("commons-committee", 2, 3)
OTHER, _ = deal_files("commons-committee", 2, 3)
PINNED = [CommitteeVerifier.from_vkey(GROUP.vkey)]


def cosigned(text: str = TEXT) -> str:
    skey, _ = generate_key("example.com/log")
    note = sign_note(text, Ed25519Signer.from_skey(skey))
    message = text.encode("utf-8")
    partials = [s.share.sign(message) for s in SHARES[:2]]
    signature = combine(partials, 2, message=message, group=GROUP.group, members=GROUP.members)
    return add_committee_signature(note, GROUP.name, signature, group=GROUP.group)


def test_a_verified_line_is_kept_and_the_note_unchanged() -> None:
    note = cosigned()
    lines = sort_committee_lines(note, PINNED)
    assert (lines.note, lines.verified, lines.dropped) == (note, 1, 0)


def test_a_note_without_committee_lines_is_left_as_it_is() -> None:
    note = parse_note(cosigned())
    plain = Note(note.text, note.signatures[:1]).format()
    for keys in (PINNED, []):
        lines = sort_committee_lines(plain, keys)
        assert (lines.note, lines.verified, lines.dropped) == (plain, 0, 0)


def _changed(change: str) -> str:
    note = parse_note(cosigned())
    log_line, line = note.signatures
    signature = line.signature
    if change == "flipped":
        line = Signature(
            line.name, line.key_id, signature[:5] + bytes([signature[5] ^ 1]) + signature[6:]
        )
    elif change == "truncated":
        line = Signature(line.name, line.key_id, signature[:-1])
    elif change == "name":
        line = Signature("another-committee", line.key_id, signature)
    elif change == "key_id":
        line = Signature(line.name, line.key_id ^ 1, signature)
    elif change == "moved":  # a genuine line over another checkpoint's text
        line = parse_note(cosigned(TEXT.replace("\n12\n", "\n13\n"))).signatures[1]
    return Note(note.text, (log_line, line)).format()


@pytest.mark.parametrize("change", ["flipped", "truncated", "name", "key_id", "moved"])
def test_a_tampered_line_is_removed_and_counted(change: str) -> None:
    lines = sort_committee_lines(_changed(change), PINNED)
    assert (lines.verified, lines.dropped) == (0, 1)
    assert len(parse_note(lines.note).signatures) == 1  # the log's line alone
    assert parse_note(lines.note).text == TEXT


def test_a_line_under_a_key_not_pinned_is_removed() -> None:
    for keys in ([], [CommitteeVerifier.from_vkey(OTHER.vkey)]):
        lines = sort_committee_lines(cosigned(), keys)
        assert (lines.verified, lines.dropped) == (0, 1)
        assert "— commons-committee" not in lines.note
