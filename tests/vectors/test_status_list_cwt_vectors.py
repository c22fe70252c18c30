"""IETF Token Status List in CWT form (§5.2) on the draft's own example, and its tampered
siblings; the platform's own CWTs round-trip with both of its key types.

``status_list_cwt.md`` is the draft's example Status List Token in CWT form (ES256, kid
``12``, signed with the example key of the draft repository's ``src/util.py``, whose public
part is ``EXAMPLE_KEY`` below): its statuses are the 16 of §4.1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest

from credit_commons.formats.cose_sign1 import CoseSign1, parse_sign1
from credit_commons.formats.status_list import StatusList
from credit_commons.formats.status_list_cwt import (
    CWT_MEDIA_TYPE,
    StatusListCwtInvalid,
    issue_status_list_cwt,
    verify_status_list_cwt,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.errors import SignatureInvalid
from credit_commons.keys.jwk import public_key_from_jwk

HERE = Path(__file__).parent / "credentials" / "token-status-list"
EXAMPLE = bytes.fromhex("".join((HERE / "status_list_cwt.md").read_text().split()))
EXAMPLE_KEY = public_key_from_jwk(
    {
        "kty": "EC",
        "crv": "P-256",
        "x": "I3HWm_0Ds1dPMI-IWmf4mBmH-YaeAVbPVu7vB27CxXo",
        "y": "6N_d5Elj9bs1htgV3okJKIdbHEpkgTmAluYKJemzn1M",
    }
)
URI = "https://example.com/statuslists/1"
IAT, EXP = 1686920170, 2291720170
# TSL §4.1: the 16 statuses of the example list (bytes b9 a3, least significant bit first).
STATUSES = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]


def verify(data: bytes, *, uri: str = URI, now: float = IAT) -> Any:
    return verify_status_list_cwt(data, EXAMPLE_KEY, uri=uri, now=now)


def test_the_draft_example_verifies_and_decodes() -> None:
    token = verify(EXAMPLE)
    assert (token.uri, token.iat, token.exp, token.ttl) == (URI, IAT, EXP, 43200)
    assert [token.status_list.get(i) for i in range(16)] == STATUSES
    parsed = parse_sign1(EXAMPLE)
    assert parsed.header(4) == b"12"  # kid, unprotected
    assert parsed.alg == "ES256"


def _parts() -> list[Any]:
    value: list[Any] = cbor2.loads(EXAMPLE).value
    return value


def _rebuild(parts: list[Any], *, tag: int | None = 18) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, parts) if tag is not None else parts)


def _resigned_protected(protected: dict[int, Any], unprotected: Any = None) -> bytes:
    # The protected header replaced (the signature left as it is).
    parts = _parts()
    parts[0] = cbor2.dumps(protected)
    if unprotected is not None:
        parts[1] = unprotected
    return _rebuild(parts)


def _payload(**changes: Any) -> bytes:
    parts = _parts()
    claims = cbor2.loads(parts[2])
    for key, value in changes.items():
        claims[int(key.removeprefix("c"))] = value
    parts[2] = cbor2.dumps(claims)
    return _rebuild(parts)


def _flip(offset: int) -> bytes:
    data = bytearray(EXAMPLE)
    data[offset] ^= 0x01
    return bytes(data)


def test_the_example_untagged_or_inside_the_cwt_tag_parses_but_is_not_a_status_list() -> None:
    # TSL §5.2: "MUST NOT be tagged with the CWT tag" and "MUST either be the tagged
    # COSE_Sign1_Tagged (18) or COSE_Mac0_Tagged (17)"; a COSE_Sign1 elsewhere may be either.
    untagged = _rebuild(_parts(), tag=None)
    wrapped = cbor2.dumps(cbor2.CBORTag(61, cbor2.CBORTag(18, _parts())))
    for data in (untagged, wrapped):
        assert parse_sign1(data).payload == parse_sign1(EXAMPLE).payload
    with pytest.raises(StatusListCwtInvalid, match="tag 18"):
        verify(untagged)
    with pytest.raises(StatusListCwtInvalid, match="CWT tag 61"):
        verify(wrapped)


SIGNATURE_BROKEN: dict[str, Callable[[], bytes]] = {
    "signature bit": lambda: _flip(len(EXAMPLE) - 1),
    "first signature byte": lambda: _flip(len(EXAMPLE) - 64),
    "status list changed": lambda: _payload(c65533={"bits": 1, "lst": b"x\xda\x03\x00"}),
    "sub changed to match another uri": lambda: _payload(c2="https://example.com/statuslists/2"),
    "exp extended": lambda: _payload(c4=EXP + 1),
    "kid moved into protected": lambda: _resigned_protected(
        {1: -7, 16: CWT_MEDIA_TYPE, 4: b"12"}, {}
    ),
}


@pytest.mark.parametrize("make", SIGNATURE_BROKEN.values(), ids=SIGNATURE_BROKEN.keys())
def test_changes_under_the_signature_are_refused(make: Callable[[], bytes]) -> None:
    data = make()
    with pytest.raises(SignatureInvalid):
        verify(data, uri=cbor2.loads(cbor2.loads(data).value[2])[2])


def _protected(protected: dict[int, Any]) -> bytes:
    return _resigned_protected(protected)


STRUCTURE_BROKEN: dict[str, Callable[[], bytes]] = {
    "trailing byte": lambda: EXAMPLE + b"\x00",
    "truncated": lambda: EXAMPLE[:-1],
    "non-preferred array length": lambda: b"\xd2\x98\x04" + EXAMPLE[2:],
    "indefinite array": lambda: b"\xd2\x9f" + EXAMPLE[2:] + b"\xff",
    "tag 17 (COSE_Mac0)": lambda: b"\xd1" + EXAMPLE[1:],
    "untagged": lambda: _rebuild(_parts(), tag=None),
    "inside the CWT tag 61": lambda: cbor2.dumps(cbor2.CBORTag(61, cbor2.CBORTag(18, _parts()))),
    "tag 61 alone": lambda: _rebuild(_parts(), tag=61),
    "three elements": lambda: _rebuild(_parts()[:3]),
    "detached payload": lambda: _rebuild([*_parts()[:2], None, _parts()[3]]),
    "protected not a map": lambda: _rebuild([cbor2.dumps([1]), *_parts()[1:]]),
    "no typ": lambda: _protected({1: -7}),
    "typ statuslist+jwt": lambda: _protected({1: -7, 16: "application/statuslist+jwt"}),
    "alg unprotected": lambda: _rebuild(
        [cbor2.dumps({16: CWT_MEDIA_TYPE}), {1: -7, 4: b"12"}, *_parts()[2:]]
    ),
    "alg HS256 (5)": lambda: _protected({1: 5, 16: CWT_MEDIA_TYPE}),
    "alg RS256 (-257)": lambda: _protected({1: -257, 16: CWT_MEDIA_TYPE}),
    "crit": lambda: _protected({1: -7, 16: CWT_MEDIA_TYPE, 2: [99], 99: 1}),
    "x5chain": lambda: _protected({1: -7, 16: CWT_MEDIA_TYPE, 33: b"cert"}),
    "label in both buckets": lambda: _protected({1: -7, 16: CWT_MEDIA_TYPE, 4: b"12"}),
}


@pytest.mark.parametrize("make", STRUCTURE_BROKEN.values(), ids=STRUCTURE_BROKEN.keys())
def test_malformed_tokens_are_refused_before_any_key_is_used(make: Callable[[], bytes]) -> None:
    used: list[CoseSign1] = []

    def key(token: CoseSign1) -> Any:
        used.append(token)
        return EXAMPLE_KEY

    with pytest.raises(StatusListCwtInvalid):
        verify_status_list_cwt(make(), key, uri=URI, now=IAT)
    assert not used


def test_another_uri_and_expiry_are_refused() -> None:
    with pytest.raises(StatusListCwtInvalid, match="another URI"):
        verify(EXAMPLE, uri="https://example.com/statuslists/2")
    with pytest.raises(StatusListCwtInvalid, match="expired"):
        verify(EXAMPLE, now=EXP)
    with pytest.raises(SignatureInvalid):
        verify_status_list_cwt(
            EXAMPLE, PrivateKey.generate(KeyType.P256).public_key, uri=URI, now=IAT
        )


@pytest.mark.parametrize("kind", [KeyType.ED25519, KeyType.P256])
def test_the_platforms_cwts_round_trip(kind: KeyType) -> None:
    signer = PrivateKey.generate(kind)
    status_list = StatusList.new(64, bits=2)
    status_list.set(9, 2)
    data = issue_status_list_cwt(
        uri=URI, status_list=status_list, iat=IAT, exp=IAT + 60, ttl=30, signer=signer, kid="k1"
    )
    token = verify_status_list_cwt(data, signer.public_key, uri=URI, now=IAT)
    assert token.status_list == status_list
    assert (token.exp, token.ttl) == (IAT + 60, 30)
    assert parse_sign1(data).header(4) == b"k1"
    # The draft's example layout: tag 18, alg then typ protected, kid unprotected.
    assert data[:1] == b"\xd2"
    assert list(cbor2.loads(cbor2.loads(data).value[0])) == [1, 16]
