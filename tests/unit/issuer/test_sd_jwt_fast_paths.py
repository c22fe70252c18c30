"""The SD-JWT issuance fast paths agree with their naive references (tests/reference)."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.reference import sd_jwt_issue as reference

from credit_commons.core.encoding import b64url_encode
from credit_commons.formats.sd_jwt_errors import ClaimsInvalid
from credit_commons.formats.sd_jwt_format import (
    COMPACT_JSON,
    PYTHON_JSON,
    RFC_EXAMPLE_JSON,
    Disclosure,
    JsonEncoding,
)
from credit_commons.issuer import sd_jwt
from credit_commons.keys.algorithms import KeyType, PrivateKey

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"])
    | st.sampled_from('"\\\x00\x1f\x7f\u2028\ue000\U0001f600/~')
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_ENCODINGS = st.sampled_from([COMPACT_JSON, RFC_EXAMPLE_JSON, PYTHON_JSON])


class _Str(str):
    """A str subclass: must be encoded as the string it is."""


@given(st.binary(max_size=300))
def test_b64url_encode_is_the_standard_library_form(data: bytes) -> None:
    assert b64url_encode(data) == base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@given(st.lists(_JSON, max_size=4), _ENCODINGS)
def test_dumps_array_is_dumps_of_the_list(items: list[Any], encoding: JsonEncoding) -> None:
    assert encoding.dumps_array(*items) == encoding.dumps(items)


def test_dumps_array_handles_str_subclasses_and_refuses_what_dumps_refuses() -> None:
    assert COMPACT_JSON.dumps_array(_Str("a\u00e9"), 1) == COMPACT_JSON.dumps([_Str("a\u00e9"), 1])
    assert PYTHON_JSON.dumps_array("\u00e9") == '["\\u00e9"]'
    for bad in (math.nan, {1, 2}, b"x"):
        with pytest.raises((ValueError, TypeError)):
            COMPACT_JSON.dumps([bad])
        with pytest.raises((ValueError, TypeError)):
            COMPACT_JSON.dumps_array("s", bad)


@given(
    _TEXT, st.none() | _TEXT.filter(lambda n: n not in {"_sd", "...", "_sd_alg"}), _JSON, _ENCODINGS
)
def test_disclosure_create_matches_whole_array_encoding(
    salt: str, name: str | None, value: Any, encoding: JsonEncoding
) -> None:
    made = Disclosure.create(salt, name, value, encoding)
    assert made.encoded == reference.disclosure_text(salt, name, value, encoding)
    if made.encoded.isascii():
        assert Disclosure.parse(made.encoded).value == value or value != value


_CLAIMS = st.recursive(
    _SCALARS | st.sampled_from([math.nan, math.inf, b"raw", {1, 2}, 1.5]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_TEXT | st.sampled_from(["_sd", "...", "_sd_alg", 7]), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(_CLAIMS)
def test_check_claims_refuses_exactly_what_the_reference_refuses(claims: Any) -> None:
    expected = reference.check_claims(claims)
    if expected is None:
        sd_jwt._check_claims(claims)
    else:
        with pytest.raises(ClaimsInvalid):
            sd_jwt._check_claims(claims)


def test_check_claims_depth_limit_matches_the_reference() -> None:
    for depth in (63, 64, 65, 66):
        node: Any = "leaf"
        for _ in range(depth):
            node = [node]
        if reference.check_claims(node) is None:
            sd_jwt._check_claims(node)
        else:
            with pytest.raises(ClaimsInvalid):
                sd_jwt._check_claims(node)


@given(
    st.dictionaries(
        st.sampled_from(["typ", "kid", "x-custom", "\u00e9"]),
        _TEXT | st.integers() | st.lists(_TEXT, max_size=2),
        max_size=3,
    ),
    _ENCODINGS,
)
def test_protected_header_segment_matches_fresh_encoding(
    header: dict[str, Any], encoding: JsonEncoding
) -> None:
    for _ in range(2):  # the second time from the cache
        assert sd_jwt._protected("EdDSA", header, encoding) == reference.protected_segment(
            "EdDSA", header, encoding
        )


def test_issued_signature_covers_the_cached_header() -> None:
    signer = PrivateKey.generate(KeyType.ED25519)
    header = {"typ": "dc+sd-jwt", "kid": "k1"}
    first = sd_jwt.issue({"a": 1}, disclosable=["/a"], signer=signer, header=header)
    second = sd_jwt.issue({"a": 2}, disclosable=["/a"], signer=signer, header=header)
    protected = reference.protected_segment("EdDSA", header, COMPACT_JSON)
    for made in (first, second):
        assert made.signatures[0].protected == protected
        signing_input = f"{protected}.{made.payload_segment}".encode("ascii")
        signer.public_key.verify(
            "EdDSA",
            signing_input,
            base64.urlsafe_b64decode(
                made.signatures[0].signature + "=" * (-len(made.signatures[0].signature) % 4)
            ),
        )
