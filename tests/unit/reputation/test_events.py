"""Reputation events, pure (reputation/events.py): canonical bytes, CIDs computed
independently, inline and detached signatures with their tampered siblings, and the shape,
size and window checks."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID, multihash

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json
from credit_commons.keys import KeyType, PrivateKey, encode_did_key
from credit_commons.reputation import (
    MAX_EVENT_BYTES,
    EventInvalid,
    EventOutsideWindow,
    EventSignatureInvalid,
    EventTooLarge,
    ReputationEvent,
    blob_cid,
    check_window,
    new_nonce,
    parse_cid,
    parse_event,
    sign_event,
)

AT = datetime(2026, 12, 7, 10, 30, 0, tzinfo=UTC)
SEED_A = bytes(range(32))
SEED_B = bytes(range(32, 64))


def _key(seed: bytes = SEED_A) -> PrivateKey:
    return PrivateKey.from_raw(KeyType.ED25519, seed)


def _event(*, detached: bool = False, key: PrivateKey | None = None, **kw: Any) -> ReputationEvent:
    values: dict[str, Any] = {
        "type": "vouch",
        "to": encode_did_key(_key(SEED_B).public_key),
        "ctx": "shg:savings",
        "epoch": "2026-12",
        "nonce": new_nonce(bytes(12)),
        "issued_at": AT,
    }
    values.update(kw)
    return sign_event(key or _key(), detached=detached, **values)


def _independent_cid(data: bytes) -> str:
    # CIDv1 (0x01) || multicodec raw (0x55) || multihash sha2-256 (0x12, 32 bytes) || digest,
    # multibase "b" + RFC 4648 base32, lower case, no padding.
    binary = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def test_signing_input_is_jcs_without_sig_and_blob_is_jcs_with_it() -> None:
    event = _event()
    doc = event.document()
    assert set(doc) == {"type", "from", "to", "ctx", "epoch", "nonce", "issuedAt", "sig"}
    unsigned = {k: v for k, v in doc.items() if k != "sig"}
    expected = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    assert event.signing_input() == expected
    assert event.blob() == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    # Members in any order give the same bytes.
    assert parse_event(dict(reversed(list(doc.items())))).blob() == event.blob()


def test_jcs_is_deterministic_for_a_fixed_key_and_nonce() -> None:
    # Ed25519 is deterministic (RFC 8032): the same event signs to the same bytes.
    assert _event().blob() == _event().blob()
    assert _event().cid == _event().cid


def test_cid_matches_an_independent_computation() -> None:
    event = _event()
    assert event.cid == _independent_cid(event.blob())
    assert event.cid.startswith("bafkrei")
    assert blob_cid(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert _independent_cid(b"") == blob_cid(b"")
    assert parse_cid(event.cid) == event.cid


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bafkrei",
        "BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU",  # upper case
        "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA",  # base58 spelling
        "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",  # CIDv0
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvykv",  # non-zero unused bits
        "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",  # dag-cbor codec
    ],
)
def test_other_cid_spellings_are_refused(text: str) -> None:
    with pytest.raises(EventInvalid):
        parse_cid(text)


@pytest.mark.parametrize("detached", [False, True])
def test_signature_round_trip(detached: bool) -> None:
    event = _event(detached=detached)
    assert event.detached is detached
    again = parse_event(event.blob())
    assert again == event
    again.verify()


def _tampered(event: ReputationEvent, **changes: Any) -> ReputationEvent:
    return parse_event({**event.document(), **changes})


@pytest.mark.parametrize("detached", [False, True])
def test_a_changed_field_breaks_the_signature(detached: bool) -> None:
    event = _event(detached=detached)
    for changes in (
        {"ctx": "general"},
        {"type": "report"},
        {"epoch": "2026-11"},
        {"nonce": new_nonce(b"\x01" * 12)},
        {"issuedAt": "2026-12-07T10:30:01Z"},
        {"to": encode_did_key(_key(b"\x07" * 32).public_key)},
        {"payloadCID": blob_cid(b"x")},
    ):
        with pytest.raises(EventSignatureInvalid):
            _tampered(event, **changes).verify()


@pytest.mark.parametrize("detached", [False, True])
def test_another_key_or_did_is_refused(detached: bool) -> None:
    event = _event(detached=detached)
    other = _event(detached=detached, key=_key(b"\x09" * 32))
    # Wrong key: the signature of another sender over the same content.
    with pytest.raises(EventSignatureInvalid):
        _tampered(other, **{"from": event.sender}).verify()
    # Wrong DID: this signature, claimed by another DID.
    with pytest.raises(EventSignatureInvalid):
        _tampered(event, **{"from": other.sender}).verify()


def test_detached_header_must_name_the_sender_and_eddsa() -> None:
    event = _event(detached=True)
    protected, _, signature = event.sig.split(".")
    key = _key()
    payload = b64url_encode(event.signing_input())

    def signed_with(header: dict[str, Any]) -> str:
        head = b64url_encode(canonical_json(header))
        return f"{head}..{b64url_encode(key.sign(f'{head}.{payload}'.encode()))}"

    kid = f"{event.sender}#{event.sender[8:]}"
    # The alternative fully specified alg is accepted (RFC 9864).
    _tampered(event, sig=signed_with({"alg": "Ed25519", "kid": kid})).verify()
    for header in (
        {"alg": "EdDSA", "kid": f"{event.to}#{event.to[8:]}"},  # another DID's kid
        {"alg": "EdDSA", "kid": event.sender},  # no fragment
        {"alg": "EdDSA"},  # no kid
        {"alg": "ES256", "kid": kid},
        {"alg": "none", "kid": kid},
        {"alg": "EdDSA", "kid": kid, "typ": "JWT"},  # another member
        {"alg": "EdDSA", "kid": kid, "jwk": {"kty": "OKP"}},  # an embedded key
    ):
        with pytest.raises(EventSignatureInvalid):
            _tampered(event, sig=signed_with(header)).verify()
    # A payload inside the JWS (not detached) and a signature in bad base64url.
    for attached in (f"{protected}.{payload}.{signature}", f"{protected}.e30.{signature}"):
        with pytest.raises(EventInvalid):
            _tampered(event, sig=attached)
    for bad in (f"{protected}..{signature}=", f"{protected}..{signature[:-1]}", "..", "a..b"):
        with pytest.raises(EventInvalid):
            _tampered(event, sig=bad)
    with pytest.raises(EventSignatureInvalid):
        _tampered(event, sig=f"{protected[:-2]}..{signature}").verify()


def test_inline_signature_in_bad_base64url_is_refused() -> None:
    event = _event()
    assert len(b64url_decode(event.sig)) == 64
    # The 86th character carries 4 unused bits (86 * 6 = 516 = 512 + 4): setting one gives
    # a second spelling of the same bytes, which strict base64url refuses.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert alphabet.index(event.sig[-1]) % 16 == 0
    second_spelling = event.sig[:-1] + alphabet[alphabet.index(event.sig[-1]) + 1]
    with pytest.raises(EventSignatureInvalid):
        _tampered(event, sig=second_spelling).verify()
    for bad in (event.sig + "=", event.sig[:-1], event.sig[:-1] + "+"):
        with pytest.raises(EventInvalid):
            _tampered(event, sig=bad)
    # A valid spelling of another signature.
    with pytest.raises(EventSignatureInvalid):
        _tampered(event, sig=b64url_encode(bytes(64))).verify()


@pytest.mark.parametrize(
    ("changes", "dropped"),
    [
        ({"extra": 1}, None),
        ({"score": "100"}, None),
        ({}, "nonce"),
        ({}, "sig"),
        ({}, "from"),
        ({"type": "like"}, None),
        ({"ctx": "Shg"}, None),
        ({"ctx": "a:b:c:d"}, None),
        ({"ctx": "x" * 33}, None),
        ({"epoch": "2026-13"}, None),
        ({"epoch": "2026-1"}, None),
        ({"nonce": "AAAAAAAAAAAAAAA"}, None),  # 15 characters
        ({"nonce": "AAAAAAAAAAAAAAAAAAAA"}, None),  # 15 bytes
        ({"nonce": "AAAAAAAAAAAAAAA="}, None),
        ({"issuedAt": "2026-12-07T10:30:00.000Z"}, None),
        ({"issuedAt": "2026-12-07T10:30:00+00:00"}, None),
        ({"issuedAt": "2026-02-30T10:30:00Z"}, None),
        ({"issuedAt": 1765103400}, None),
        ({"from": "did:web:example.com"}, None),
        ({"to": "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169"}, None),  # P-256
        ({"payloadCID": "not-a-cid"}, None),
        ({"sig": "abc"}, None),
    ],
)
def test_shape_is_exact(changes: dict[str, Any], dropped: str | None) -> None:
    doc = {**_event().document(), **changes}
    if dropped:
        del doc[dropped]
    with pytest.raises(EventInvalid):
        parse_event(doc)


def test_self_vouch_is_refused() -> None:
    key = _key()
    with pytest.raises(EventInvalid, match="differ"):
        _event(to=encode_did_key(key.public_key), key=key)


def test_non_json_and_duplicate_members_are_refused() -> None:
    blob = _event().blob().decode()
    with pytest.raises(EventInvalid):
        parse_event(blob[:-1])
    with pytest.raises(EventInvalid):
        parse_event(blob[:-1] + ',"ctx":"general"}')  # a duplicate member
    with pytest.raises(EventInvalid):
        parse_event("[]")


def test_size_limit() -> None:
    assert len(_event().blob()) < MAX_EVENT_BYTES
    padded = _event().blob().decode() + " " * MAX_EVENT_BYTES
    with pytest.raises(EventTooLarge):
        parse_event(padded)
    with pytest.raises(EventTooLarge):
        parse_event(padded.encode())
    # At the limit exactly, white space included, it is read.
    fits = _event().blob().decode()
    parse_event(fits + " " * (MAX_EVENT_BYTES - len(fits)))


@pytest.mark.parametrize(
    ("issued", "epoch", "ok"),
    [
        (AT, "2026-12", True),
        (AT + timedelta(seconds=300), "2026-12", True),  # exactly the allowed skew
        (AT + timedelta(seconds=301), "2026-12", False),  # beyond it
        (AT - timedelta(seconds=3600), "2026-12", True),  # exactly the allowed age
        (AT - timedelta(seconds=3601), "2026-12", False),  # older
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), "2026-12", False),  # not in the epoch
        (datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC), "2026-11", False),  # nor this
    ],
)
def test_epoch_window(issued: datetime, epoch: str, ok: bool) -> None:
    event = _event(issued_at=issued, epoch=epoch)
    now = AT if issued.day != 1 and issued.day != 30 else issued

    def check() -> None:
        check_window(event, now=now, max_age_seconds=3600, max_skew_seconds=300)

    if ok:
        check()
    else:
        with pytest.raises(EventOutsideWindow):
            check()


def test_epoch_window_at_the_turn_of_the_year() -> None:
    last = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    check_window(_event(issued_at=last), now=last, max_age_seconds=60, max_skew_seconds=0)
    event = _event(issued_at=last + timedelta(seconds=1), epoch="2027-01")
    check_window(event, now=last, max_age_seconds=60, max_skew_seconds=1)
    with pytest.raises(EventOutsideWindow):
        check_window(
            _event(issued_at=last + timedelta(seconds=1)),
            now=last,
            max_age_seconds=60,
            max_skew_seconds=1,
        )


@given(st.binary(min_size=0, max_size=300))
def test_cid_of_any_blob_matches_the_independent_computation(data: bytes) -> None:
    assert blob_cid(data) == _independent_cid(data)
    assert parse_cid(blob_cid(data)) == blob_cid(data)


@given(st.binary(min_size=0, max_size=2_000))
def test_cid_of_any_blob_is_multiformats_cid(data: bytes) -> None:
    # blob_cid builds the CID's bytes itself (for speed); the multiformats library agrees.
    expected = CID("base32", 1, "raw", multihash.digest(data, "sha2-256"))
    assert blob_cid(data) == str(expected)
    assert CID.decode(blob_cid(data)) == expected
