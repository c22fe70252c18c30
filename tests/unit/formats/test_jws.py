"""The one compact-JWS parser and signer (formats/jws.py): an accepting token and its tampered
siblings, each of which must be refused with the parser's error for that step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json
from credit_commons.formats.jws import (
    EMBEDDED_KEY_HEADERS,
    CompactJws,
    JwsAlgorithmRefused,
    JwsCritNotUnderstood,
    JwsHeaderRefused,
    JwsInvalid,
    JwsMalformed,
    check_header,
    parse_compact,
    sign_compact,
    verify_compact,
)
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey
from credit_commons.keys.errors import AlgorithmNotAllowed, KeyTypeMismatch, SignatureInvalid
from credit_commons.keys.jwk import public_key_to_jwk

KEY = PrivateKey.generate(KeyType.ED25519)
OTHER = PrivateKey.generate(KeyType.P256)
HEADER = {"typ": "example+jwt", "kid": "k1"}
PAYLOAD = {"sub": "idt_1", "n": 1, "nested": {"a": [1, 2]}}
TOKEN = sign_compact(HEADER, PAYLOAD, KEY)


def _seg(text: str) -> str:
    return b64url_encode(text.encode("utf-8"))


def _signed(header_json: str, payload_json: str, key: PrivateKey = KEY) -> str:
    # Signs raw JSON text, so that duplicate members and other invalid shapes can be signed.
    signing_input = f"{_seg(header_json)}.{_seg(payload_json)}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode('ascii')))}"


def _with_header(**members: Any) -> str:
    return _signed(json.dumps({"alg": KEY.alg, **HEADER, **members}), json.dumps(PAYLOAD))


def _parse(token: object) -> CompactJws:
    return parse_compact(token, algs=ACCEPTED_ALGS)


def test_the_accepting_token_parses_and_verifies() -> None:
    jws = _parse(TOKEN)
    assert jws.header == {**HEADER, "alg": "EdDSA"}
    assert jws.payload == PAYLOAD
    assert jws.alg == "EdDSA"
    head, body, signature = TOKEN.split(".")
    assert jws.signing_input == f"{head}.{body}".encode("ascii")
    assert jws.signature == b64url_decode(signature)
    jws.verify(KEY.public_key)
    assert verify_compact(TOKEN, KEY.public_key, typ="example+jwt", algs=ACCEPTED_ALGS) == PAYLOAD
    # RFC 8785 JSON, alg from the signer.
    assert b64url_decode(head) == canonical_json({**HEADER, "alg": "EdDSA"})


def _tampered() -> Iterator[tuple[str, object, type[JwsInvalid]]]:
    head, body, signature = TOKEN.split(".")
    padded = body + "=" * (-len(body) % 4 or 4)
    yield "not a string", b"a.b.c", JwsMalformed
    yield "non-ASCII", TOKEN + "é", JwsMalformed
    yield "two parts", f"{head}.{body}", JwsMalformed
    yield "four parts", f"{TOKEN}.{signature}", JwsMalformed
    yield "empty header", f".{body}.{signature}", JwsMalformed
    yield "empty payload", f"{head}..{signature}", JwsMalformed
    yield "empty signature", f"{head}.{body}.", JwsMalformed
    yield "padded payload (RFC 7515 §2)", f"{head}.{padded}.{signature}", JwsMalformed
    yield "padded signature", f"{head}.{body}.{signature}==", JwsMalformed
    yield "standard base64 alphabet", f"{head}.{body.replace('-', '+')}+.{signature}", JwsMalformed
    yield (
        "non-canonical trailing bits",
        f"{head[:-1]}{chr(ord(head[-1]) + 1)}.{body}.x",
        JwsMalformed,
    )
    yield "whitespace", f"{head}.{body} .{signature}", JwsMalformed
    dup_header = '{"alg":"EdDSA","kid":"k1","kid":"k2","typ":"example+jwt"}'
    yield "duplicate header member (RFC 7515 §4)", _signed(dup_header, "{}"), JwsMalformed
    dup_payload = '{"sub":"idt_1","sub":"idt_2"}'
    yield (
        "duplicate payload member",
        _signed(json.dumps({"alg": "EdDSA"}), dup_payload),
        JwsMalformed,
    )
    yield "header not an object", _signed("[1]", "{}"), JwsMalformed
    yield "payload not an object", _signed(json.dumps({"alg": "EdDSA"}), '"x"'), JwsMalformed
    yield "payload not JSON", _signed(json.dumps({"alg": "EdDSA"}), "{sub}"), JwsMalformed
    yield "NaN in the payload", _signed(json.dumps({"alg": "EdDSA"}), '{"n": NaN}'), JwsMalformed
    deep = "[" * 100 + "]" * 100
    yield "deep nesting", _signed(json.dumps({"alg": "EdDSA"}), f'{{"a": {deep}}}'), JwsMalformed
    yield "no alg", _signed(json.dumps(HEADER), "{}"), JwsMalformed
    for alg in ("none", "HS256", "RS256", "ES384", "eddsa", None, 1):
        yield f"alg {alg!r}", _with_header(alg=alg), JwsAlgorithmRefused
    for member in sorted(EMBEDDED_KEY_HEADERS):
        jwk = public_key_to_jwk(OTHER.public_key)
        yield f"embedded {member}", _with_header(**{member: jwk}), JwsHeaderRefused
    yield "crit not understood", _with_header(crit=["ext"], ext=1), JwsCritNotUnderstood
    yield "crit b64 (RFC 7797)", _with_header(crit=["b64"], b64=False), JwsCritNotUnderstood
    yield "crit empty", _with_header(crit=[]), JwsCritNotUnderstood
    yield "crit not a list", _with_header(crit="ext", ext=1), JwsCritNotUnderstood
    yield "crit naming a registered header", _with_header(crit=["kid"]), JwsCritNotUnderstood
    yield "crit naming an absent header", _with_header(crit=["ext"]), JwsCritNotUnderstood
    yield "crit listed twice", _with_header(crit=["ext", "ext"], ext=1), JwsCritNotUnderstood


@pytest.mark.parametrize(
    ("token", "error"), [pytest.param(t, e, id=name) for name, t, e in _tampered()]
)
def test_tampered_siblings_are_refused(token: object, error: type[JwsInvalid]) -> None:
    with pytest.raises(error) as info:
        _parse(token)
    assert type(info.value) is error


def test_refused_alg_keeps_the_keys_domain_code() -> None:
    # What a refused alg has always answered (the keys domain raised it from verify).
    with pytest.raises(JwsAlgorithmRefused) as info:
        _parse(_with_header(alg="none"))
    assert info.value.code == AlgorithmNotAllowed.code
    assert info.value.status == AlgorithmNotAllowed.status


def test_the_allow_list_is_the_callers() -> None:
    with pytest.raises(JwsAlgorithmRefused):
        parse_compact(TOKEN, algs=("ES256",))
    assert parse_compact(TOKEN, algs=("EdDSA",)).alg == "EdDSA"


def test_an_understood_crit_extension_is_accepted() -> None:
    token = _with_header(crit=["ext"], ext=1)
    assert parse_compact(token, algs=ACCEPTED_ALGS, understood_crit=("ext",)).header["ext"] == 1


def test_refused_headers_are_the_callers() -> None:
    token = _with_header(jwk=public_key_to_jwk(KEY.public_key))
    assert "jwk" in parse_compact(token, algs=ACCEPTED_ALGS, refused_headers=()).header
    with pytest.raises(JwsHeaderRefused):
        parse_compact(_with_header(x5t="abc"), algs=ACCEPTED_ALGS, refused_headers={"x5t"})


def test_length_bound() -> None:
    with pytest.raises(JwsMalformed):
        parse_compact(TOKEN, algs=ACCEPTED_ALGS, max_chars=len(TOKEN) - 1)
    assert parse_compact(TOKEN, algs=ACCEPTED_ALGS, max_chars=len(TOKEN)).payload == PAYLOAD


def test_a_lazy_payload_is_refused_when_read() -> None:
    token = _signed(json.dumps({"alg": "EdDSA"}), '{"a":1,"a":2}')
    jws = parse_compact(token, algs=ACCEPTED_ALGS, decode_payload=False)
    jws.verify(KEY.public_key)  # the signature is checked first
    with pytest.raises(JwsMalformed):
        _ = jws.payload
    good = parse_compact(TOKEN, algs=ACCEPTED_ALGS, decode_payload=False)
    assert good.payload == PAYLOAD
    assert good.payload is good.payload  # decoded once


@pytest.mark.parametrize("part", [0, 1, 2])
def test_every_bit_flip_is_refused(part: int) -> None:
    parts = TOKEN.split(".")
    raw = bytearray(b64url_decode(parts[part]))
    for byte in range(len(raw)):
        for bit in range(8):
            flipped = raw.copy()
            flipped[byte] ^= 1 << bit
            token = ".".join(
                b64url_encode(bytes(flipped)) if i == part else p for i, p in enumerate(parts)
            )
            with pytest.raises((JwsInvalid, SignatureInvalid)):
                verify_compact(token, KEY.public_key, typ="example+jwt", algs=ACCEPTED_ALGS)


def test_verify_compact_checks_typ_and_key() -> None:
    with pytest.raises(JwsInvalid, match="typ"):
        verify_compact(TOKEN, KEY.public_key, typ="other+jwt", algs=ACCEPTED_ALGS)
    with pytest.raises(KeyTypeMismatch):  # key-type confusion: an EdDSA token, a P-256 key
        verify_compact(TOKEN, OTHER.public_key, typ="example+jwt", algs=ACCEPTED_ALGS)
    other = sign_compact(HEADER, PAYLOAD, PrivateKey.generate(KeyType.ED25519))
    with pytest.raises(SignatureInvalid):
        verify_compact(other, KEY.public_key, typ="example+jwt", algs=ACCEPTED_ALGS)


def test_check_header_returns_the_alg() -> None:
    assert check_header({"alg": "ES256", "typ": "x"}, algs=ACCEPTED_ALGS) == "ES256"
    with pytest.raises(JwsMalformed):
        check_header({"typ": "x"}, algs=ACCEPTED_ALGS)
