"""Unit tests for credit_commons.verifier.predicates (seed 003 §4.3 predicate attestations):
every accepting token has tampered siblings that must be rejected with the step's typed
error.  The tokens are made by the identity domain's signer
(tests/unit/identity/test_predicates.py).
"""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.predicate_support import (
    AUDIENCE,
    KEYS,
    NONCE,
    NOW,
    decode,
    flip,
    forge,
    issue,
    signing_input,
    verify,
)

from credit_commons.core.encoding import b64url_decode, b64url_encode, canonical_json
from credit_commons.core.errors import IntegrityError
from credit_commons.formats.jws import JwsAlgorithmRefused
from credit_commons.identity.predicates import (
    ATTESTATION_TYP,
)
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.errors import AlgorithmNotAllowed, KeyTypeMismatch
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.verifier.predicate_errors import (
    AttestationAudienceMismatch,
    AttestationExpired,
    AttestationInvalid,
    AttestationMalformed,
    AttestationNonceMismatch,
    AttestationNotYetValid,
    AttestationSignatureInvalid,
)


@pytest.fixture(params=list(KeyType), ids=str)
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return KEYS[request.param]


# --- verification: accepted variants ------------------------------------------------------


def test_leeway_bounds(key: PrivateKey) -> None:
    token = issue(key)
    verify(token, key, now=NOW + timedelta(minutes=5, seconds=29))
    verify(token, key, now=NOW - timedelta(seconds=30))
    verify(token, key, now=NOW + timedelta(minutes=5) - timedelta(seconds=1), leeway=timedelta(0))


def test_fully_specified_ed25519_alg_is_accepted() -> None:
    key = KEYS[KeyType.ED25519]
    header, payload = decode(issue(key))
    verify(forge(key, header | {"alg": "Ed25519"}, payload), key)


def test_kid_is_optional() -> None:
    key = KEYS[KeyType.P256]
    header, payload = decode(issue(key))
    del header["kid"]
    verify(forge(key, header, payload), key)


# --- verification: rejections -------------------------------------------------------------


def test_error_hierarchy() -> None:
    for cls in (
        AttestationMalformed, AttestationSignatureInvalid, AttestationExpired,
        AttestationNotYetValid, AttestationAudienceMismatch, AttestationNonceMismatch,
    ):  # fmt: skip
        assert issubclass(cls, AttestationInvalid)
        assert issubclass(cls, IntegrityError)
        assert cls.code.startswith("identity.attestation_")


def test_every_payload_bit_flip_is_rejected(key: PrivateKey) -> None:
    header, payload, signature = issue(key).split(".")
    for byte in range(len(b64url_decode(payload))):
        for bit in range(8):
            with pytest.raises(AttestationSignatureInvalid):
                verify(f"{header}.{flip(payload, byte, bit)}.{signature}", key)


def test_every_header_bit_flip_is_rejected(key: PrivateKey) -> None:
    header, payload, signature = issue(key).split(".")
    for byte in range(len(b64url_decode(header))):
        for bit in range(8):
            with pytest.raises(AttestationInvalid):
                verify(f"{flip(header, byte, bit)}.{payload}.{signature}", key)


def test_every_signature_bit_flip_is_rejected(key: PrivateKey) -> None:
    header, payload, signature = issue(key).split(".")
    for byte in range(len(b64url_decode(signature))):
        for bit in range(8):
            with pytest.raises(AttestationSignatureInvalid):
                verify(f"{header}.{payload}.{flip(signature, byte, bit)}", key)


def test_signature_swap_is_rejected(key: PrivateKey) -> None:
    header, payload, _ = issue(key).split(".")
    other = issue(key, jti="another").split(".")[2]
    with pytest.raises(AttestationSignatureInvalid):
        verify(f"{header}.{payload}.{other}", key)


def test_other_key_is_rejected(key: PrivateKey) -> None:
    with pytest.raises(AttestationSignatureInvalid):
        verify(issue(key), PrivateKey.generate(key.key_type))


def test_alg_none_is_rejected(key: PrivateKey) -> None:
    header, payload = decode(issue(key))
    unsigned = signing_input(header | {"alg": "none"}, payload)
    # An unsecured JWS (RFC 7515 §6: alg none, empty signature) is refused for its alg, as the
    # one JWS parser checks the header before the signature (RFC 7515 §5.2); an empty
    # signature under an accepted alg is malformed.
    with pytest.raises(AttestationSignatureInvalid):
        verify(f"{unsigned}.", key)
    with pytest.raises(AttestationMalformed):
        verify(f"{signing_input(header, payload)}.", key)
    with pytest.raises(AttestationSignatureInvalid) as info:
        verify(f"{unsigned}.{b64url_encode(b'x')}", key)
    # Refused by the one JWS parser's allow-list, before any key is used (formats/jws.py).
    assert isinstance(info.value.__cause__, JwsAlgorithmRefused)
    assert info.value.__cause__.code == AlgorithmNotAllowed.code


def test_hs256_with_the_public_key_as_secret_is_rejected(key: PrivateKey) -> None:
    header, payload = decode(issue(key))
    text = signing_input(header | {"alg": "HS256"}, payload)
    mac = hmac.new(key.public_key.raw(), text.encode(), hashlib.sha256).digest()
    with pytest.raises(AttestationSignatureInvalid) as info:
        verify(f"{text}.{b64url_encode(mac)}", key)
    assert isinstance(info.value.__cause__, JwsAlgorithmRefused)


@pytest.mark.parametrize("alg", ["RS256", "ES384", "ES256K", "PS256", "EdDSA ", "eddsa", None, 1])
def test_algs_outside_the_allow_list_are_rejected(alg: object) -> None:
    key = KEYS[KeyType.P256]
    header, payload = decode(issue(key))
    with pytest.raises(AttestationSignatureInvalid):
        verify(forge(key, header | {"alg": alg}, payload), key)


def test_key_type_confusion_is_rejected() -> None:
    ed, ec = KEYS[KeyType.ED25519], KEYS[KeyType.P256]
    header, payload = decode(issue(ed))
    with pytest.raises(AttestationSignatureInvalid) as info:  # ES256 claimed for an Ed25519 key
        verify(forge(ed, header | {"alg": "ES256"}, payload), ed)
    assert isinstance(info.value.__cause__, KeyTypeMismatch)
    with pytest.raises(AttestationSignatureInvalid):  # an Ed25519 token against a P-256 key
        verify(issue(ed), ec)


def test_wrong_audience(key: PrivateKey) -> None:
    with pytest.raises(AttestationAudienceMismatch):
        verify(issue(key), key, audience="https://other-lender.example")


def test_wrong_nonce(key: PrivateKey) -> None:
    with pytest.raises(AttestationNonceMismatch):
        verify(issue(key), key, nonce=NONCE + "x")


@pytest.mark.parametrize(
    ("offset", "leeway"),
    [
        (timedelta(minutes=5, seconds=30), timedelta(seconds=30)),
        (timedelta(days=365), timedelta(seconds=30)),
        (timedelta(minutes=5), timedelta(0)),
    ],
)
def test_expired(key: PrivateKey, offset: timedelta, leeway: timedelta) -> None:
    with pytest.raises(AttestationExpired):
        verify(issue(key), key, now=NOW + offset, leeway=leeway)


def test_issued_in_the_future(key: PrivateKey) -> None:
    token = issue(key, now=NOW + timedelta(days=30), ttl=timedelta(days=60))
    with pytest.raises(AttestationNotYetValid):
        verify(token, key)
    with pytest.raises(AttestationNotYetValid):
        verify(issue(key), key, now=NOW - timedelta(seconds=31))


GOOD_HEADER = {"alg": "ES256", "typ": ATTESTATION_TYP, "kid": "key-1"}


@pytest.mark.parametrize(
    "header",
    [
        GOOD_HEADER | {"typ": "JWT"},
        GOOD_HEADER | {"typ": "predicate-attestation+JWT"},
        {"alg": "ES256", "kid": "key-1"},
        GOOD_HEADER | {"jwk": {"kty": "EC"}},
        GOOD_HEADER | {"jku": "https://evil.example/jwks"},
        GOOD_HEADER | {"x5u": "https://evil.example/cert"},
        GOOD_HEADER | {"x5c": ["MIIB"]},
        GOOD_HEADER | {"crit": ["exp"], "exp": 1},
        GOOD_HEADER | {"b64": False, "crit": ["b64"]},
        GOOD_HEADER | {"zip": "DEF"},
    ],
)
def test_header_rules(header: dict[str, Any]) -> None:
    key = KEYS[KeyType.P256]
    with pytest.raises(AttestationMalformed):
        verify(forge(key, header, decode(issue(key))[1]), key)


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"])
def test_keys_are_never_taken_from_the_header(member: str) -> None:
    key = KEYS[KeyType.P256]
    header = GOOD_HEADER | {member: public_key_to_jwk(key.public_key)}
    with pytest.raises(AttestationMalformed, match="key or key reference"):
        verify(forge(key, header, decode(issue(key))[1]), key)


def _payload() -> dict[str, Any]:
    return decode(issue(KEYS[KeyType.P256]))[1]


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"aud": [AUDIENCE]},
        {"iat": NOW.timestamp() + 0.5},
        {"iat": True},
        {"exp": str(int(NOW.timestamp()) + 300)},
        {"exp": int(NOW.timestamp())},  # exp not after iat
        {"results": []},
        {"results": [{"claim": "age >= 60", "satisfied": True}] * 11},
        {"results": [{"claim": "age >= 60", "satisfied": "yes"}]},
        {"results": [{"claim": "age >= 60", "satisfied": True, "value": 61}]},
        {"all_satisfied": False},  # inconsistent with the results
        {"sub": "alice"},
        {"nonce": None},
        {"jti": ""},
    ],
)
def test_claim_set_rules(change: dict[str, Any]) -> None:
    key = KEYS[KeyType.P256]
    with pytest.raises(AttestationMalformed):
        verify(forge(key, GOOD_HEADER, _payload() | change), key)


@pytest.mark.parametrize("value", [10**20, -1, True])
def test_numeric_dates_are_bounded_integers(value: int) -> None:
    key = KEYS[KeyType.P256]
    raw = json.dumps(_payload() | {"exp": value}).encode()  # JCS refuses 10**20 itself
    with pytest.raises(AttestationMalformed):
        verify(forge(key, GOOD_HEADER, raw), key)


@pytest.mark.parametrize("missing", ["iss", "sub", "aud", "nonce", "iat", "exp", "jti", "results"])
def test_claim_set_members_are_required(missing: str) -> None:
    key = KEYS[KeyType.P256]
    payload = _payload()
    del payload[missing]
    with pytest.raises(AttestationMalformed):
        verify(forge(key, GOOD_HEADER, payload), key)


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        (b'{"alg":"ES256","alg":"none","typ":"%s"}', None),  # duplicate member
        (b"[]", None),
        (b"[" * 10_000, None),  # nesting deep enough to exhaust the parser's recursion
        (None, b'{"a":' * 5_000),
        (b"not json", None),
        (b'{"alg":"ES256","typ":"\xff"}', None),  # not UTF-8
        (None, b"[1, 2]"),
        (None, b"{}"),
    ],
)
def test_json_rules(header: bytes | None, payload: bytes | None) -> None:
    key = KEYS[KeyType.P256]
    good = issue(key).split(".")
    raw_header = (
        header.replace(b"%s", ATTESTATION_TYP.encode()) if header else b64url_decode(good[0])
    )
    with pytest.raises(AttestationMalformed):
        verify(forge(key, raw_header, payload or b64url_decode(good[1])), key)


def test_duplicate_member_and_nan_in_the_claim_set_are_rejected() -> None:
    key = KEYS[KeyType.P256]
    payload = _payload()
    raw = canonical_json(payload)
    twice = raw[:-1] + b',"aud":"https://other.example"}'
    nan = raw.replace(b'"iat":%d' % payload["iat"], b'"iat":NaN')
    assert nan != raw
    for bad in (twice, nan):
        with pytest.raises(AttestationMalformed):
            verify(forge(key, GOOD_HEADER, bad), key)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + ".",
        lambda t: t + ".AAAA",
        lambda t: "." + t,
        lambda t: t.replace(".", "..", 1),
        lambda t: ".".join(t.split(".")[:2]),
        lambda t: t.split(".")[0],
        lambda t: t + "=",
        lambda t: t.replace(".", "=.", 1),
        lambda t: t + " ",
        lambda t: " " + t,
        lambda t: t + "\u00e9",
        lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t + "+",
        lambda t: t + "A" * 20_000,
        lambda t: "",
        lambda t: t.encode(),
    ],
)
def test_structure_rules(mangle: Callable[[str], Any]) -> None:
    key = KEYS[KeyType.ED25519]
    with pytest.raises(AttestationInvalid):
        verify(mangle(issue(key)), key)


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize("which", [0, 1, 2])
def test_non_canonical_base64url_is_rejected(which: int) -> None:
    """The same bytes, but non-zero trailing bits in the last character (RFC 4648 §3.5)."""
    key = KEYS[KeyType.ED25519]
    # Vary kid and jti until the part's length leaves trailing bits (not a multiple of 4).
    tokens = (issue(key, kid="k" * n, jti="j" * n).split(".") for n in range(1, 5))
    parts = next(p for p in tokens if len(p[which]) % 4)
    verify(".".join(parts), key)
    last = B64URL.index(parts[which][-1])
    assert last % 2 == 0  # canonical: the lowest trailing bit is zero
    parts[which] = parts[which][:-1] + B64URL[last | 1]
    if which < 2:  # re-sign, so that only the encoding is wrong
        parts[2] = b64url_encode(key.sign(f"{parts[0]}.{parts[1]}".encode()))
    with pytest.raises(AttestationMalformed):
        verify(".".join(parts), key)
