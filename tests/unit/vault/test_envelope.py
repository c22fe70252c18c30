"""The CCV1 envelope: layout, round trips, and every tamper failing with one opaque error."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_commons.core.errors import ValidationError
from credit_commons.vault.envelope import (
    MAGIC,
    SealContext,
    SubjectKeyRef,
    key_id_of,
    open_envelope,
    open_parsed,
    parse_header,
    seal,
)
from credit_commons.vault.errors import DecryptionFailed

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
REF = SubjectKeyRef(key_id="sk_01JDEMO0000000000000000000", version=3)
CTX = SealContext(subject="idt_abc123def456", purpose="pii", record="identity/name")


def counting_rng() -> Callable[[int], bytes]:
    """A deterministic byte source, so layouts can be checked byte by byte."""
    counter = itertools.count(0x40)

    def rng(n: int) -> bytes:
        return bytes(next(counter) % 256 for _ in range(n))

    return rng


def expect_opaque_failure(envelope: bytes, key: bytes = KEY, ctx: SealContext = CTX) -> None:
    with pytest.raises(DecryptionFailed) as info:
        open_envelope(envelope, key, context=ctx)
    # One error, one message, whatever failed: no oracle.
    assert type(info.value) is DecryptionFailed
    assert info.value.detail == DecryptionFailed.title
    assert info.value.code == "vault.decryption_failed"


def test_round_trip_and_header() -> None:
    for plaintext in (b"", b"Asha Devi", bytes(range(256)) * 40):
        envelope = seal(KEY, plaintext, subject_key_ref=REF, context=CTX)
        assert open_envelope(envelope, KEY, context=CTX) == plaintext
        header = parse_header(envelope)
        assert header.format == MAGIC
        assert header.subject_key_ref == REF
        assert header.size == 9 + len(REF.key_id)


def test_layout_is_the_documented_one() -> None:
    rng = counting_rng()
    envelope = seal(KEY, b"hello", subject_key_ref=REF, context=CTX, rng=rng)
    nonce = counting_rng()(12)
    key_id = REF.key_id.encode()
    header = b"CCV1" + bytes([len(key_id)]) + key_id + struct.pack(">I", 3)
    ctx = b"idt_abc123def456\npii\nidentity/name"
    body = AESGCM(KEY).encrypt(nonce, b"hello", header + ctx)
    assert envelope == header + nonce + body
    assert len(envelope) == len(header) + 12 + 5 + 16
    assert CTX.canonical() == ctx
    # The same random bytes give the same envelope (vectors reproduce).
    assert seal(KEY, b"hello", subject_key_ref=REF, context=CTX, rng=counting_rng()) == envelope


def test_fresh_randomness_per_seal() -> None:
    a = seal(KEY, b"same", subject_key_ref=REF, context=CTX)
    b = seal(KEY, b"same", subject_key_ref=REF, context=CTX)
    assert a != b


def test_every_bit_flip_fails() -> None:
    envelope = seal(KEY, b"+91 98765 43210", subject_key_ref=REF, context=CTX)
    for index in range(len(envelope)):
        for bit in range(8):
            tampered = bytearray(envelope)
            tampered[index] ^= 1 << bit
            expect_opaque_failure(bytes(tampered))


def test_every_truncation_and_extension_fails() -> None:
    envelope = seal(KEY, b"ABCDE1234F", subject_key_ref=REF, context=CTX)
    for length in range(len(envelope)):
        expect_opaque_failure(envelope[:length])
    expect_opaque_failure(envelope + b"\x00")
    expect_opaque_failure(b"\x00" + envelope)


@pytest.mark.parametrize(
    "moved",
    [
        SealContext(subject="idt_someoneelse", purpose="pii", record="identity/name"),
        SealContext(subject="idt_abc123def456", purpose="credentials", record="identity/name"),
        SealContext(subject="idt_abc123def456", purpose="pii", record="identity/phone"),
        SealContext(subject="pii", purpose="idt_abc123def456", record="identity/name"),
        # Field boundaries are part of the context: "ab|c" is not "a|bc".
        SealContext(subject="idt_abc123def45", purpose="6pii", record="identity/name"),
    ],
)
def test_moved_to_another_context_fails(moved: SealContext) -> None:
    envelope = seal(KEY, b"secret", subject_key_ref=REF, context=CTX)
    expect_opaque_failure(envelope, ctx=moved)


def test_wrong_key_fails() -> None:
    envelope = seal(KEY, b"secret", subject_key_ref=REF, context=CTX)
    expect_opaque_failure(envelope, key=OTHER_KEY)
    for bad in (b"", KEY[:16], KEY + b"\x00"):
        expect_opaque_failure(envelope, key=bad)


@pytest.mark.parametrize("marker", [b"CCV0", b"CCV2", b"ccv1", b"\x00\x00\x00\x00", b"CCW1"])
def test_wrong_version_marker_fails(marker: bytes) -> None:
    envelope = seal(KEY, b"secret", subject_key_ref=REF, context=CTX)
    expect_opaque_failure(marker + envelope[4:])
    with pytest.raises(DecryptionFailed):
        parse_header(marker + envelope[4:])


def test_rewritten_key_reference_fails() -> None:
    envelope = seal(KEY, b"secret", subject_key_ref=REF, context=CTX)
    other = SubjectKeyRef(key_id="sk_01JDEMO0000000000000000001", version=3)
    newer = SubjectKeyRef(key_id=REF.key_id, version=4)
    for ref in (other, newer):
        forged = seal(KEY, b"x", subject_key_ref=ref, context=CTX)
        size = parse_header(forged).size
        expect_opaque_failure(forged[:size] + envelope[parse_header(envelope).size :])


def test_spliced_nonce_or_body_fails() -> None:
    a = seal(KEY, b"first value!", subject_key_ref=REF, context=CTX)
    b = seal(KEY, b"second value", subject_key_ref=REF, context=CTX)
    h = parse_header(a).size
    # The nonce of one envelope with the body of another (same key, same length).
    expect_opaque_failure(a[: h + 12] + b[h + 12 :])
    expect_opaque_failure(b[: h + 12] + a[h + 12 :])


def test_open_parsed_and_ready_ciphers_agree() -> None:
    envelope = seal(AESGCM(KEY), b"hello", subject_key_ref=REF, context=CTX)
    h = parse_header(envelope).size
    assert open_parsed(envelope, h, AESGCM(KEY), CTX.canonical()) == b"hello"
    assert open_envelope(envelope, KEY, context=CTX.canonical()) == b"hello"
    assert key_id_of(envelope) == REF.key_id
    with pytest.raises(DecryptionFailed):
        open_parsed(envelope[: h + 20], h, AESGCM(KEY), CTX.canonical())
    with pytest.raises(DecryptionFailed):
        key_id_of(b"XXXX" + envelope[4:])


@pytest.mark.parametrize(
    "junk", [b"", b"CCV1", b"CCV1\x05abc", b"CCV1\x00" + bytes(200), bytes(300)]
)
def test_junk_fails_in_parse_header(junk: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        parse_header(junk)
    expect_opaque_failure(junk)


def test_parse_header_refuses_non_bytes() -> None:
    with pytest.raises(DecryptionFailed):
        parse_header("CCV1...")  # type: ignore[arg-type]


def test_header_with_bad_key_id_or_version_fails() -> None:
    envelope = bytearray(seal(KEY, b"v", subject_key_ref=REF, context=CTX))
    spaced = bytearray(envelope)
    spaced[5] = 0x20  # a space is not a visible ASCII key id character
    expect_opaque_failure(bytes(spaced))
    zero_version = bytearray(envelope)
    h = parse_header(bytes(envelope)).size
    zero_version[h - 4 : h] = b"\x00\x00\x00\x00"
    expect_opaque_failure(bytes(zero_version))


@pytest.mark.parametrize(
    ("key_id", "version"),
    [
        ("", 1),
        ("a b", 1),
        ("sk_1\n", 1),
        ("x" * 256, 1),
        ("é", 1),
        ("\ud800", 1),
        ("sk_1", 0),
        ("sk_1", 2**32),
        ("sk_1", True),
    ],
)
def test_subject_key_ref_validates(key_id: str, version: int) -> None:
    with pytest.raises(ValidationError):
        SubjectKeyRef(key_id=key_id, version=version)


@pytest.mark.parametrize(
    "fields",
    [
        ("", "p", "r"),
        ("s", "", "r"),
        ("s", "p", ""),
        ("s" * 65536, "p", "r"),
        ("s", "\ud800", "r"),
        ("s\n", "p", "r"),
        ("s", "p\nq", "r"),
    ],
)
def test_seal_context_validates(fields: tuple[str, str, str]) -> None:
    with pytest.raises(ValidationError):
        SealContext(*fields)


def test_seal_validates_key_and_rng() -> None:
    with pytest.raises(ValidationError):
        seal(KEY[:31], b"x", subject_key_ref=REF, context=CTX)
    with pytest.raises(ValidationError):
        seal(KEY, b"x", subject_key_ref=REF, context=CTX, rng=lambda n: b"\x00" * (n - 1))


_field = st.characters(blacklist_characters="\n", blacklist_categories=("Cs",))
contexts = st.builds(
    SealContext,
    subject=st.text(_field, min_size=1, max_size=40),
    purpose=st.text(_field, min_size=1, max_size=20),
    record=st.text(_field, min_size=1, max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(max_size=2048), key=st.binary(min_size=32, max_size=32), ctx=contexts)
def test_round_trip_property(plaintext: bytes, key: bytes, ctx: SealContext) -> None:
    envelope = seal(key, plaintext, subject_key_ref=REF, context=ctx)
    assert open_envelope(envelope, key, context=ctx) == plaintext
    assert parse_header(envelope).subject_key_ref == REF


@settings(max_examples=300, deadline=None)
@given(
    plaintext=st.binary(max_size=256),
    data=st.data(),
)
def test_any_byte_change_fails_property(plaintext: bytes, data: st.DataObject) -> None:
    envelope = seal(KEY, plaintext, subject_key_ref=REF, context=CTX)
    index = data.draw(st.integers(min_value=0, max_value=len(envelope) - 1))
    delta = data.draw(st.integers(min_value=1, max_value=255))
    tampered = bytearray(envelope)
    tampered[index] ^= delta
    expect_opaque_failure(bytes(tampered))


@settings(max_examples=100, deadline=None)
@given(a=contexts, b=contexts)
def test_distinct_contexts_do_not_open_each_other(a: SealContext, b: SealContext) -> None:
    envelope = seal(KEY, b"value", subject_key_ref=REF, context=a)
    if a == b:
        assert open_envelope(envelope, KEY, context=b) == b"value"
    else:
        expect_opaque_failure(envelope, ctx=b)
