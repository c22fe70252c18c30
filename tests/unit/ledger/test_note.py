"""Unit tests of credit_commons.ledger.note (C2SP signed-note@v1.0.0)."""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError, dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credit_commons.core.encoding import b64_decode
from credit_commons.ledger import note
from credit_commons.ledger.errors import (
    LogError,
    NoteInvalid,
    NoteSignatureInvalid,
    SignatureMissing,
    SignerKeyInvalid,
    VerifierKeyInvalid,
)

ALICE = note.Ed25519Signer.from_private_key(
    "alice.example/log", Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
)
BOB = note.Ed25519Signer.from_private_key(
    "bob.example/log", Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
)
TEXT = "first line\n\nthird line after a blank one\n"


@dataclass(frozen=True)
class FixedVerifier:
    """A fake Verifier with any name and key ID, accepting one signature."""

    name: str
    key_id: int
    accepted: bytes = b"ok"

    def verify(self, message: bytes, signature: bytes, /) -> None:
        if signature != self.accepted:
            raise NoteSignatureInvalid("fake verifier rejects it")


def test_key_id_follows_the_spec() -> None:
    public = ALICE.public_key
    digest = hashlib.sha256(b"alice.example/log\n\x01" + public).digest()
    assert ALICE.key_id == int.from_bytes(digest[:4], "big")
    assert note.compute_key_id("alice.example/log", 1, public) == ALICE.key_id
    assert note.compute_key_id("alice.example/log", 4, public) != ALICE.key_id


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a+b",
        "a b",
        "a\tb",
        "a\u00a0b",
        "a\u2003b",
        "a\u3000b",
        "a\x00b",
        "a\nb",
        "a\u2028b",
        "\ud800",
    ],
    ids=repr,
)
def test_invalid_key_names(name: str) -> None:
    assert not note.is_valid_key_name(name)
    with pytest.raises(NoteInvalid):
        note.Signature(name, 1, b"s")
    with pytest.raises(VerifierKeyInvalid):
        note.Ed25519Verifier(name, ALICE.public_key)


@pytest.mark.parametrize("name", ["a", "example.com/log42", "ключ", "a—b"])
def test_valid_key_names(name: str) -> None:
    assert note.is_valid_key_name(name)


@pytest.mark.parametrize(
    "text",
    ["", "no newline", "tab\there\n", "cr\r\n", "nul\x00\n", "unit sep\x1f\n", "\ud800\n"],
    ids=repr,
)
def test_check_text_rejects(text: str) -> None:
    with pytest.raises(NoteInvalid):
        note.check_text(text)


def test_check_text_accepts_unicode_and_blank_lines() -> None:
    note.check_text("\n")
    note.check_text("ed è subito sera.\n\n\u007f\n")


class TestSignature:
    def test_line_round_trip(self) -> None:
        sig = note.Signature("k", 0xDEADBEEF, b"\x01\x02\x03")
        assert sig.line() == "— k 3q2+7wECAw==\n"
        assert note.Signature.parse_line(sig.line()[:-1]) == sig

    @pytest.mark.parametrize("key_id", [-1, 2**32, True])
    def test_rejects_bad_key_id(self, key_id: int) -> None:
        with pytest.raises(NoteInvalid):
            note.Signature("k", key_id, b"s")

    def test_rejects_empty_signature(self) -> None:
        with pytest.raises(NoteInvalid):
            note.Signature("k", 1, b"")

    def test_is_frozen(self) -> None:
        sig = note.Signature("k", 1, b"s")
        with pytest.raises(FrozenInstanceError):
            sig.name = "other"  # type: ignore[misc]

    @pytest.mark.parametrize(
        "line",
        [
            "- k 3q2+7wECAw==",  # hyphen
            "\u2013 k 3q2+7wECAw==",  # en dash
            "\u2014k 3q2+7wECAw==",  # no space after the dash
            "\u2014  k 3q2+7wECAw==",  # two spaces
            "\u2014 k  3q2+7wECAw==",
            "\u2014 k 3q2+7wECAw== ",  # trailing space
            "\u2014 k",
            "\u2014 k ",
            "\u2014 a b 3q2+7wECAw==",
            "\u2014 k 3q2+7wECAw",  # unpadded
            "\u2014 k 3q2-7wECAw==",  # base64url
            "\u2014 k 3q2+7w==",  # four bytes: no signature after the key ID
            "\u2014 a+b 3q2+7wECAw==",
        ],
        ids=repr,
    )
    def test_parse_line_rejects(self, line: str) -> None:
        with pytest.raises(NoteInvalid):
            note.Signature.parse_line(line)


class TestParseNote:
    def test_text_is_separated_by_the_last_blank_line(self) -> None:
        signed = note.sign_note(TEXT, ALICE)
        parsed = note.parse_note(signed)
        assert parsed.text == TEXT
        assert parsed.format() == signed
        assert note.parse_note(signed.encode()) == parsed

    def test_text_ending_in_a_blank_line(self) -> None:
        signed = note.sign_note("a\n\n", ALICE)
        assert signed.startswith("a\n\n\n\u2014 ")
        assert note.verify_note(signed, [ALICE.verifier()]).text == "a\n\n"

    def test_signature_like_lines_before_the_last_blank_line_are_text(self) -> None:
        data = "text\n\n\u2014 k 3q2+7wECAw==\n\n\u2014 k 3q2+7wECAw==\n"
        parsed = note.parse_note(data)
        assert parsed.text == "text\n\n\u2014 k 3q2+7wECAw==\n"
        assert len(parsed.signatures) == 1

    def test_signature_limit(self) -> None:
        line = note.sign_text(TEXT, ALICE).line()
        assert len(note.parse_note(TEXT + "\n" + line * 100).signatures) == 100
        with pytest.raises(NoteInvalid, match="more than 100"):
            note.parse_note(TEXT + "\n" + line * 101)
        with pytest.raises(NoteInvalid, match="more than 16"):
            note.parse_note(TEXT + "\n" + line * 17, max_signatures=16)

    @pytest.mark.parametrize(
        "data",
        [
            "",
            "\n",
            "\n\n",
            "text\n\n\n",
            "text\n\n\u2014 k 3q2+7wECAw==\n\n",
            "text\n\u2014 k 3q2+7wECAw==\n",
            b"text\n\n\xe2\x80\x94 k 3q2+7wECAw==\xff\n",
            b"text\n\n\xe2\x80 k 3q2+7wECAw==\n",
        ],
        ids=repr,
    )
    def test_malformed_notes(self, data: str | bytes) -> None:
        with pytest.raises(NoteInvalid):
            note.parse_note(data)


class TestNote:
    def test_needs_a_signature(self) -> None:
        with pytest.raises(NoteInvalid):
            note.Note(TEXT, ())
        with pytest.raises(NoteInvalid):
            note.sign_note(TEXT)

    def test_needs_valid_text(self) -> None:
        with pytest.raises(NoteInvalid):
            note.sign_note("no newline", ALICE)
        with pytest.raises(NoteInvalid):
            note.Note("bad\x07\n", (note.Signature("k", 1, b"s"),))

    def test_with_signatures_replaces_same_key(self) -> None:
        stale = note.Signature(ALICE.name, ALICE.key_id, b"stale")
        other = note.Signature("other", 7, b"x")
        fresh = note.sign_text(TEXT, ALICE)
        updated = note.Note(TEXT, (stale, other)).with_signatures(fresh)
        assert updated.signatures == (other, fresh)


class TestSigners:
    def test_sign_and_verify_two_keys(self) -> None:
        signed = note.sign_note(TEXT, ALICE, BOB)
        opened = note.verify_note(signed, [ALICE.verifier(), BOB.verifier()])
        assert [s.name for s in opened.verified] == [ALICE.name, BOB.name]

    def test_raw_signer_protocol(self) -> None:
        class Wrapped:
            def __init__(self) -> None:
                self.key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
                self.calls = 0

            def sign(self, data: bytes) -> bytes:
                self.calls += 1
                return self.key.sign(data)

        raw = Wrapped()
        signer = note.Ed25519Signer(ALICE.name, ALICE.public_key, raw)
        assert note.sign_note(TEXT, signer) == note.sign_note(TEXT, ALICE)
        assert raw.calls == 1

    def test_raw_signer_returning_garbage(self) -> None:
        class Broken:
            def sign(self, message: bytes, /) -> bytes:
                return b"short"

        with pytest.raises(LogError, match="64 bytes"):
            note.sign_note(TEXT, note.Ed25519Signer(ALICE.name, ALICE.public_key, Broken()))

    @pytest.mark.parametrize(("name", "public"), [("a b", bytes(32)), ("ok", bytes(31))])
    def test_signer_checks_name_and_key(self, name: str, public: bytes) -> None:
        with pytest.raises(SignerKeyInvalid):
            note.Ed25519Signer(name, public, Ed25519PrivateKey.generate())


class TestKeys:
    def test_generate_key_is_reproducible_from_a_seed(self) -> None:
        skey, vkey = note.generate_key("seeded.example", bytes(range(32)))
        assert skey.startswith("PRIVATE+KEY+seeded.example+")
        assert note.generate_key("seeded.example", bytes(range(32))) == (skey, vkey)
        signer = note.Ed25519Signer.from_skey(skey)
        verifier = note.Ed25519Verifier.from_vkey(vkey)
        assert signer.verifier() == verifier
        assert verifier.vkey == vkey
        note.verify_note(note.sign_note(TEXT, signer), [verifier])

    def test_generate_key_is_random_by_default(self) -> None:
        assert note.generate_key("a")[1] != note.generate_key("a")[1]

    @pytest.mark.parametrize(("name", "seed"), [("a+b", bytes(32)), ("a", bytes(31))])
    def test_generate_key_rejects(self, name: str, seed: bytes) -> None:
        with pytest.raises(SignerKeyInvalid):
            note.generate_key(name, seed)

    def test_vkey_whose_base64_contains_plus(self) -> None:
        seed = next(
            bytes([i]) * 32
            for i in range(256)
            if "+" in note.generate_key("k", bytes([i]) * 32)[1].split("+", 2)[2]
        )
        _, vkey = note.generate_key("k", seed)
        assert vkey.count("+") > 2
        assert note.Ed25519Verifier.from_vkey(vkey).vkey == vkey

    @pytest.mark.parametrize(
        "vkey",
        [
            "",
            "name",
            "name+c74f20a3",
            "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+",
            "PeterNeumann+c74f20a3+AQ==",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ],
    )
    def test_malformed_vkeys(self, vkey: str) -> None:
        with pytest.raises(VerifierKeyInvalid):
            note.Ed25519Verifier.from_vkey(vkey)

    def test_vkey_of_another_type_is_not_an_ed25519_key(self) -> None:
        vkey = note.format_vkey("w", 0x04, ALICE.public_key)
        assert note.split_vkey(vkey)[2] == 0x04
        with pytest.raises(VerifierKeyInvalid, match="not an Ed25519"):
            note.Ed25519Verifier.from_vkey(vkey)

    @pytest.mark.parametrize(
        "skey",
        [
            "PRIVATE+KEY+a",
            "private+key+a+00000000+AQ==",
            "PRIVATE+KEY+a b+00000000+AQ==",
        ],
    )
    def test_malformed_skeys(self, skey: str) -> None:
        with pytest.raises(SignerKeyInvalid):
            note.Ed25519Signer.from_skey(skey)

    def test_skey_errors_never_echo_the_key(self) -> None:
        skey, _ = note.generate_key("a", bytes(range(32)))
        secret = skey.rsplit("+", 1)[1]
        tampered = skey.replace("+a+", "+b+")
        with pytest.raises(SignerKeyInvalid) as info:
            note.Ed25519Signer.from_skey(tampered)
        assert secret not in info.value.diagnostics()
        assert b64_decode(secret)[1:] not in str(info.value).encode()


class TestVerifyNote:
    def test_unknown_key_id_with_known_name_is_ignored(self) -> None:
        signed = note.sign_note(TEXT, ALICE)
        impostor = FixedVerifier(ALICE.name, ALICE.key_id ^ 1)
        with pytest.raises(SignatureMissing):
            note.verify_note(signed, [impostor])

    def test_bad_signature_after_a_good_one_rejects_the_note(self) -> None:
        bad = note.Signature(BOB.name, BOB.key_id, bytes(64))
        data = note.Note(TEXT, (note.sign_text(TEXT, ALICE), bad)).format()
        with pytest.raises(NoteSignatureInvalid) as info:
            note.verify_note(data, [ALICE.verifier(), BOB.verifier()])
        assert info.value.extra["key_name"] == BOB.name
        # Without Bob's key, his line is just an unknown signature.
        assert len(note.verify_note(data, [ALICE.verifier()]).unverified) == 1

    def test_ambiguous_known_keys(self) -> None:
        data = note.Note(TEXT, (note.Signature("k", 1, b"ok"),)).format()
        with pytest.raises(VerifierKeyInvalid, match="two known keys"):
            note.verify_note(data, [FixedVerifier("k", 1), FixedVerifier("k", 1, b"other")])
        # The same key listed twice is not ambiguous.
        note.verify_note(data, [FixedVerifier("k", 1), FixedVerifier("k", 1)])

    def test_any_verifier_implementation(self) -> None:
        data = note.Note(TEXT, (note.Signature("k", 1, b"ok"),)).format()
        assert note.verify_note(data, [FixedVerifier("k", 1)]).text == TEXT
        bad = note.Note(TEXT, (note.Signature("k", 1, b"no"),)).format()
        with pytest.raises(NoteSignatureInvalid):
            note.verify_note(bad, [FixedVerifier("k", 1)])

    def test_signature_over_other_text_fails(self) -> None:
        sig = note.sign_text("other\n", ALICE)
        with pytest.raises(NoteSignatureInvalid):
            note.verify_note(note.Note(TEXT, (sig,)).format(), [ALICE.verifier()])
