"""Status List Tokens in CWT form as another implementation may write them (TSL §5.2).

The tokens here are assembled byte by byte and signed with ``cryptography`` directly, not
with ``cose_sign1.sign1``: a float NumericDate, an indefinite-length claims map, a tag in an
extension claim, longer-than-needed integers and a protected header in another serialisation
are all valid CBOR under a valid signature, and must verify (RFC 9052 §9 restricts only the
encoding of the ``Sig_structure``, which the verifier builds).  What must not verify: a map
with a repeated key anywhere (RFC 8949 §5.6, RFC 9052 §9), a token outside
``COSE_Sign1_Tagged`` (§5.2), an ``nbf`` in the future and a tagged ``iat`` (RFC 8392 §2:
"the leading tag 1 (epoch-based date/time) MUST be omitted").
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from credit_commons.core.encoding import b64url_encode
from credit_commons.formats.cose_sign1 import CoseSign1
from credit_commons.formats.status_list_cwt import StatusListCwtInvalid, verify_status_list_cwt
from credit_commons.keys.jwk import public_key_from_jwk

URI = "https://example.com/statuslists/1"
NOW = 1_800_000_000
KEY = ec.generate_private_key(ec.SECP256R1())
_NUMBERS = KEY.public_key().public_numbers()
PUBLIC = public_key_from_jwk(
    {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(_NUMBERS.x.to_bytes(32, "big")),
        "y": b64url_encode(_NUMBERS.y.to_bytes(32, "big")),
    }
)
# TSL §4.3's example StatusList: {"bits": 1, "lst": h'78dadbb918000217015d'}.
STATUS_LIST = bytes.fromhex("a2646269747301636c73744a78dadbb918000217015d")
# alg ES256 (-7) and typ application/statuslist+cwt, in preferred serialisation.
PROTECTED = bytes.fromhex("a2012610781a6170706c69636174696f6e2f7374617475736c6973742b637774")


def text(value: str) -> bytes:
    return cbor2.dumps(value)


def uint(value: int) -> bytes:
    return cbor2.dumps(value)


def claims_map(*pairs: tuple[bytes, bytes], indefinite: bool = False) -> bytes:
    # A claims map written pair by pair, so a pair may repeat a key or be spelt oddly.
    body = b"".join(key + value for key, value in pairs)
    if indefinite:
        return b"\xbf" + body + b"\xff"
    assert len(pairs) < 24
    return bytes([0xA0 + len(pairs)]) + body


def standard(**changes: bytes | None) -> list[tuple[bytes, bytes]]:
    # The registered claims, each replaceable (bytes) or removable (None) by its name.
    pairs = {
        "sub": (uint(2), text(URI)),
        "iat": (uint(6), uint(NOW - 60)),
        "exp": (uint(4), uint(NOW + 3600)),
        "ttl": (uint(65534), uint(600)),
        "status_list": (uint(65533), STATUS_LIST),
    }
    out = []
    for name, (key, value) in pairs.items():
        replaced = changes.get(name, value)
        if replaced is not None:
            out.append((key, replaced))
    return out


def sign(
    payload: bytes,
    *,
    protected: bytes = PROTECTED,
    unprotected: bytes = b"\xa1\x04\x42k1",  # {4 (kid): h'6b31'}
    tag: bytes | None = b"\xd2",
) -> bytes:
    # RFC 9052 §4.4: Sig_structure = ["Signature1", protected, h'', payload], written here
    # by hand (definite lengths, shortest arguments, as §9 requires of it).
    def bstr(data: bytes) -> bytes:
        return cbor2.dumps(data)

    to_be_signed = b"\x84" + text("Signature1") + bstr(protected) + b"\x40" + bstr(payload)
    r, s = decode_dss_signature(KEY.sign(to_be_signed, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    message = b"\x84" + bstr(protected) + unprotected + bstr(payload) + bstr(signature)
    return (tag or b"") + message


def verify(data: bytes, *, now: float = NOW) -> Any:
    return verify_status_list_cwt(data, PUBLIC, uri=URI, now=now)


FLOAT_64 = b"\xfb" + struct.pack(">d", NOW + 3600.5)  # exp, a float in 64 bits

ACCEPTED: dict[str, Callable[[], bytes]] = {
    "the preferred form (control)": lambda: sign(claims_map(*standard())),
    "float exp and iat": lambda: sign(
        claims_map(*standard(exp=FLOAT_64, iat=cbor2.dumps(float(NOW - 60))))
    ),
    "indefinite-length claims map": lambda: sign(claims_map(*standard(), indefinite=True)),
    "tag 1 in an extension claim": lambda: sign(
        claims_map(*standard(), (uint(1000), b"\xc1" + uint(NOW)))
    ),
    "tag 258 set in an extension claim": lambda: sign(
        claims_map(*standard(), (uint(1001), b"\xd9\x01\x02\x82\x01\x02"))
    ),
    "half-precision float in an extension claim": lambda: sign(
        claims_map(*standard(), (uint(1002), b"\xf9\x3c\x00"))
    ),
    "longer-than-needed integers": lambda: sign(
        claims_map(
            *standard(ttl=b"\x1a\x00\x00\x02\x58"),
            (b"\x18\x07", b"\x1b\x00\x00\x00\x00\x00\x00\x00\x01"),  # cti-like key 7: 1
        )
    ),
    "indefinite-length text sub": lambda: sign(
        claims_map(*standard(sub=b"\x7f" + text(URI[:10]) + text(URI[10:]) + b"\xff"))
    ),
    "indefinite-length StatusList map": lambda: sign(
        claims_map(*standard(status_list=b"\xbf" + STATUS_LIST[1:] + b"\xff"))
    ),
    "protected header with a long alg and an indefinite map": lambda: sign(
        claims_map(*standard()),
        protected=b"\xbf\x01\x38\x06\x10" + text("application/statuslist+cwt") + b"\xff",
    ),
    "nbf now": lambda: sign(claims_map(*standard(), (uint(5), uint(NOW)))),
    "nbf within the leeway": lambda: sign(claims_map(*standard(), (uint(5), uint(NOW + 30)))),
}


@pytest.mark.parametrize("make", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_valid_cbor_from_another_implementation_verifies(make: Callable[[], bytes]) -> None:
    token = verify(make())
    assert token.uri == URI
    assert [token.status_list.get(i) for i in range(4)] == [1, 0, 0, 1]


def test_a_float_numericdate_is_kept_as_it_was_signed() -> None:
    token = verify(sign(claims_map(*standard(exp=FLOAT_64))))
    assert token.exp == NOW + 3600.5


def _nested_duplicate() -> bytes:
    return claims_map(*standard(), (uint(1000), b"\x81\xa2\x01\x00\x01\x01"))  # [{1: 0, 1: 1}]


REFUSED: dict[str, tuple[Callable[[], bytes], str]] = {
    "sub twice (the second for another list)": (
        lambda: sign(claims_map(*standard(), (uint(2), text(URI + "x")))),
        "repeated key",
    ),
    "a key twice, spelt two ways": (
        lambda: sign(claims_map(*standard(), (b"\x18\x02", text(URI)))),
        "repeated key",
    ),
    "sub twice in an indefinite map": (
        lambda: sign(claims_map(*standard(), (uint(2), text(URI)), indefinite=True)),
        "repeated key",
    ),
    "a repeated key nested in an extension claim": (
        lambda: sign(_nested_duplicate()),
        "repeated key",
    ),
    "bits twice in the StatusList": (
        lambda: sign(
            claims_map(*standard(status_list=b"\xa3" + STATUS_LIST[1:] + b"\x64bits\x08"))
        ),
        "repeated key",
    ),
    "alg twice in the protected header": (
        lambda: sign(claims_map(*standard()), protected=b"\xa3" + PROTECTED[1:] + b"\x01\x27"),
        "repeated key",
    ),
    "kid twice in the unprotected header": (
        lambda: sign(claims_map(*standard()), unprotected=b"\xa2\x04\x42k1\x04\x42k2"),
        "repeated key|preferred serialisation",
    ),
    "untagged": (lambda: sign(claims_map(*standard()), tag=None), "tag 18"),
    "inside the CWT tag 61": (
        lambda: sign(claims_map(*standard()), tag=b"\xd8\x3d\xd2"),
        "CWT tag 61",
    ),
    "nbf an hour ahead": (
        lambda: sign(claims_map(*standard(), (uint(5), uint(NOW + 3600)))),
        "not valid yet",
    ),
    "nbf a float ahead": (
        lambda: sign(claims_map(*standard(), (uint(5), cbor2.dumps(NOW + 61.5)))),
        "not valid yet",
    ),
    "no iat": (lambda: sign(claims_map(*standard(iat=None))), "no iat"),
    "iat with tag 1": (
        lambda: sign(claims_map(*standard(iat=b"\xc1" + uint(NOW - 60)))),
        "NumericDate",
    ),
    "exp infinite": (
        lambda: sign(claims_map(*standard(exp=b"\xf9\x7c\x00"))),
        "finite",
    ),
    "ttl a float": (
        lambda: sign(claims_map(*standard(ttl=cbor2.dumps(600.0)))),
        "ttl",
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_invalid_tokens_are_refused(case: tuple[Callable[[], bytes], str]) -> None:
    make, reason = case
    with pytest.raises(StatusListCwtInvalid, match=reason):
        verify(make())


def test_a_token_outside_cose_sign1_tagged_is_refused_before_any_key_is_used() -> None:
    used: list[CoseSign1] = []

    def key(token: CoseSign1) -> Any:
        used.append(token)
        return PUBLIC

    for tag in (None, b"\xd8\x3d\xd2", b"\xd8\x3d"):
        with pytest.raises(StatusListCwtInvalid):
            verify_status_list_cwt(sign(claims_map(*standard()), tag=tag), key, uri=URI, now=NOW)
    assert not used


def test_an_expired_token_is_refused_at_its_float_exp() -> None:
    data = sign(claims_map(*standard(exp=FLOAT_64)))
    assert verify(data, now=NOW + 3600.4).exp == NOW + 3600.5
    with pytest.raises(StatusListCwtInvalid, match="expired"):
        verify(data, now=NOW + 3600.5)
