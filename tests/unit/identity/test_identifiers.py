"""Unit tests for credit_commons.identity.identifiers.

Values here are synthetic (built to the documented layouts); published examples live in
tests/vectors/identity/.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from credit_commons.core.errors import ValidationError
from credit_commons.identity import identifiers as ids
from credit_commons.identity.errors import IdentifierInvalid
from credit_commons.identity.identifiers import (
    GST_STATE_CODES,
    PAN_HOLDER_TYPES,
    IdentifierKind,
    gstin_check_character,
    normalize,
    normalize_aadhaar,
    normalize_gstin,
    normalize_mobile,
    normalize_pan,
    normalize_udyam,
    verhoeff_check_digit,
)

ALNUM = string.digits + string.ascii_uppercase


def reason(kind: IdentifierKind, value: object) -> str:
    with pytest.raises(IdentifierInvalid) as info:
        normalize(kind, value)  # type: ignore[arg-type]
    assert info.value.kind == kind
    return info.value.reason


# -- Verhoeff tables -------------------------------------------------------------------------


def test_verhoeff_d_is_the_dihedral_group_d5() -> None:
    d = ids._VERHOEFF_D
    inv = ids._VERHOEFF_INV
    for a in range(10):
        assert d[0][a] == d[a][0] == a  # 0 is the identity
        assert d[a][inv[a]] == 0  # inv is the inverse
        for b in range(10):
            for c in range(10):
                assert d[d[a][b]][c] == d[a][d[b][c]]  # associative
    assert any(d[a][b] != d[b][a] for a in range(10) for b in range(10))  # not abelian


def test_verhoeff_p_rows_are_powers_of_one_permutation() -> None:
    p = ids._VERHOEFF_P
    assert p[0] == tuple(range(10))
    for i in range(1, 8):
        assert p[i] == tuple(p[1][x] for x in p[i - 1])
    assert tuple(p[1][x] for x in p[7]) == p[0]  # period 8


@pytest.mark.parametrize("payload", ["", "12a", "１２３", "١٢٣", " 123", None, 123])
def test_verhoeff_rejects_non_digit_payloads(payload: object) -> None:
    with pytest.raises(ValidationError):
        verhoeff_check_digit(payload)  # type: ignore[arg-type]


# -- Aadhaar ---------------------------------------------------------------------------------

aadhaar_payloads = st.from_regex(r"[2-9][0-9]{10}", fullmatch=True)


def _aadhaar(payload: str) -> str:
    return payload + verhoeff_check_digit(payload)


@given(aadhaar_payloads)
def test_generated_aadhaar_numbers_are_accepted(payload: str) -> None:
    number = _aadhaar(payload)
    assert normalize_aadhaar(number) == number
    spaced = " ".join((number[:4], number[4:8], number[8:]))
    assert normalize_aadhaar(spaced) == number
    assert normalize_aadhaar(spaced.replace(" ", "-")) == number


@given(aadhaar_payloads, st.integers(0, 11), st.integers(1, 9))
def test_any_single_digit_change_is_rejected(payload: str, position: int, delta: int) -> None:
    number = _aadhaar(payload)
    changed = str((int(number[position]) + delta) % 10)
    tampered = number[:position] + changed + number[position + 1 :]
    with pytest.raises(IdentifierInvalid):
        normalize_aadhaar(tampered)


@given(aadhaar_payloads, st.integers(0, 10))
def test_any_adjacent_transposition_is_rejected(payload: str, position: int) -> None:
    number = _aadhaar(payload)
    assume(number[position] != number[position + 1])
    tampered = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    with pytest.raises(IdentifierInvalid):
        normalize_aadhaar(tampered)


@pytest.mark.parametrize(
    "value",
    [
        "2341 2341 234",  # 11 digits
        "2341 2341 23466",  # 13 digits
        "23412 341 2346",  # wrong grouping
        "2341  2341 2346",  # two separators
        "2341_2341_2346",
        "2341.2341.2346",
        "2341 2341 234six",
        "２３４１２３４１２３４６",  # full-width digits
        "२३४१२३४१२३४६",  # Devanagari digits
        "",
        "   ",
        "2" * 100,
    ],
)
def test_aadhaar_format_errors(value: str) -> None:
    assert reason(IdentifierKind.AADHAAR, value) == "format"


@pytest.mark.parametrize("first", ["0", "1"])
def test_aadhaar_never_starts_with_0_or_1(first: str) -> None:
    number = _aadhaar(first + "2341234123")
    assert reason(IdentifierKind.AADHAAR, number) == "format"


def test_aadhaar_check_digit_error() -> None:
    number = _aadhaar("23412341234")
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert reason(IdentifierKind.AADHAAR, wrong) == "checksum"


@pytest.mark.parametrize("value", [None, 234123412346, b"234123412346", ["2341"]])
def test_non_strings_are_rejected_with_reason_type(value: object) -> None:
    for kind in IdentifierKind:
        assert reason(kind, value) == "type"


# -- PAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("holder", sorted(PAN_HOLDER_TYPES))
def test_every_documented_holder_type_is_accepted(holder: str) -> None:
    pan = f"ABC{holder}D1234E"
    assert normalize_pan(pan) == pan
    assert normalize_pan(pan.lower()) == pan


def test_holder_types_are_the_documented_ten() -> None:
    assert sorted(PAN_HOLDER_TYPES) == sorted("PCHFATBLJG")


@pytest.mark.parametrize("holder", sorted(set(string.ascii_uppercase) - set(PAN_HOLDER_TYPES)))
def test_other_holder_letters_are_rejected(holder: str) -> None:
    assert reason(IdentifierKind.PAN, f"ABC{holder}D1234E") == "holder_type"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ABCPD0000E", "serial"),
        ("ABCPD1234", "format"),
        ("ABCPD12345", "format"),
        ("ABCPD1234EF", "format"),
        ("ABC PD1234E", "format"),
        ("ABCPD-1234-E", "format"),
        ("ABCPı1234E", "format"),  # dotless i upper-cases to I: refused before upper-casing
        ("ＡＢＣＰＤ１２３４Ｅ", "format"),
    ],
)
def test_pan_errors(value: str, why: str) -> None:
    assert reason(IdentifierKind.PAN, value) == why


# -- GSTIN -----------------------------------------------------------------------------------

state_codes = st.sampled_from(sorted(GST_STATE_CODES))
holder_types = st.sampled_from(sorted(PAN_HOLDER_TYPES))
letters = st.text(string.ascii_uppercase, min_size=1, max_size=1)


@st.composite
def gstins(draw: st.DrawFn) -> str:
    pan = (
        draw(st.text(string.ascii_uppercase, min_size=3, max_size=3))
        + draw(holder_types)
        + draw(letters)
        + draw(st.from_regex(r"[0-9]{3}[1-9]", fullmatch=True))
        + draw(letters)
    )
    body = draw(state_codes) + pan + draw(st.sampled_from(ALNUM[1:])) + "Z"
    return body + gstin_check_character(body)


@given(gstins())
def test_generated_gstins_are_accepted(gstin: str) -> None:
    assert normalize_gstin(gstin) == gstin
    assert normalize_gstin(gstin.lower()) == gstin


@given(gstins(), st.integers(0, 14), st.sampled_from(ALNUM))
def test_any_single_character_change_in_a_gstin_is_rejected(
    gstin: str, position: int, char: str
) -> None:
    assume(gstin[position] != char)
    with pytest.raises(IdentifierInvalid):
        normalize_gstin(gstin[:position] + char + gstin[position + 1 :])


@given(gstins(), st.integers(0, 13))
def test_any_adjacent_transposition_in_a_gstin_is_rejected(gstin: str, position: int) -> None:
    # Luhn mod 36 alone misses the swap of "0" and "Z", but no such swap keeps the GSTIN
    # layout, so format and check character together catch every adjacent transposition.
    assume(gstin[position] != gstin[position + 1])
    swapped = gstin[:position] + gstin[position + 1] + gstin[position] + gstin[position + 2 :]
    with pytest.raises(IdentifierInvalid):
        normalize_gstin(swapped)


def test_luhn_mod_36_misses_only_the_0_z_transposition() -> None:
    # The documented weakness of Luhn mod N: swapping code points 0 and N-1 is invisible.
    undetected = {
        (a, b)
        for a in ALNUM
        for b in ALNUM
        if a < b
        and gstin_check_character(f"27AAPFU0939F{a}{b}")
        == gstin_check_character(f"27AAPFU0939F{b}{a}")
    }
    assert undetected == {("0", "Z")}


def _gstin(body: str) -> str:
    return body + gstin_check_character(body)


@pytest.mark.parametrize("state", ["00", "39", "40", "96", "98", "99"])
def test_unknown_state_codes_are_rejected(state: str) -> None:
    assert reason(IdentifierKind.GSTIN, _gstin(state + "ABCPD1234E1Z")) == "state_code"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("27ABCPD1234E0Z", "format"),  # entity number 0
        ("27ABCPD1234E1Y", "format"),  # 14th character not Z
        ("27ABCXD1234E1Z", "holder_type"),
        ("27ABCPD0000E1Z", "serial"),
        ("2AABCPD1234E1Z", "format"),
    ],
)
def test_gstin_component_errors(body: str, why: str) -> None:
    assert reason(IdentifierKind.GSTIN, _gstin(body)) == why


def test_gstin_check_character_rejects_bad_bodies() -> None:
    for body in ["27ABCPD1234E1", "27abcpd1234e1z", "27ABCPD1234E1Z!", None]:
        with pytest.raises(ValidationError):
            gstin_check_character(body)  # type: ignore[arg-type]


# -- Udyam -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("UDYAM-MH-19-0012345", "UDYAM-MH-19-0012345"),
        ("udyam-ka-03-7654321", "UDYAM-KA-03-7654321"),
        ("  Udyam-Dl-01-0000001\n", "UDYAM-DL-01-0000001"),
    ],
)
def test_udyam_normalises_to_upper_case(value: str, canonical: str) -> None:
    assert normalize_udyam(value) == canonical


@pytest.mark.parametrize(
    "value",
    [
        "UDYAM-MH-19-001234",
        "UDYAM-MH-19-00123456",
        "UDYAM-MH-1-0012345",
        "UDYAM-M1-19-0012345",
        "UDYAM MH 19 0012345",
        "UDYAMMH190012345",
        "UDYOG-MH-19-0012345",
        "UAM-MH-19-0012345",
        "UDYAM-MH-19-0012345-1",
    ],
)
def test_udyam_format_errors(value: str) -> None:
    assert reason(IdentifierKind.UDYAM, value) == "format"


# -- mobile ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "9876543210",
        "98765 43210",
        "98765-43210",
        "+919876543210",
        "+91 98765 43210",
        "+91-98765-43210",
        "919876543210",
        "91 98765 43210",
        "09876543210",
        "0 98765 43210",
    ],
)
def test_mobile_forms_normalise_to_e164(value: str) -> None:
    assert normalize_mobile(value) == "+919876543210"


@pytest.mark.parametrize("first", "6789")
def test_mobile_first_digits(first: str) -> None:
    assert normalize_mobile(first + "123456789") == "+91" + first + "123456789"


def test_ten_digits_starting_with_91_are_a_national_number() -> None:
    # 91XXXXXXXX (ten digits) is a mobile number in the 9 series, not a country code.
    assert normalize_mobile("9198765432") == "+919198765432"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("5876543210", "format"),
        ("0123456789", "format"),
        ("+91 5876543210", "format"),
        ("987654321", "format"),
        ("98765432101", "format"),
        ("+9109876543210", "format"),
        ("0091 98765 43210", "format"),
        ("(+91) 98765 43210", "format"),
        ("98765 4321O", "format"),
        ("+44 7700 900123", "prefix"),
        ("+1 2025550123", "prefix"),
    ],
)
def test_mobile_errors(value: str, why: str) -> None:
    assert reason(IdentifierKind.MOBILE, value) == why


# -- the single entry point and its errors ---------------------------------------------------


def test_normalize_dispatches_on_kind() -> None:
    assert normalize(IdentifierKind.PAN, "abcpd1234e") == "ABCPD1234E"
    assert normalize("mobile", "9876543210") == "+919876543210"  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        normalize("passport", "X")  # type: ignore[arg-type]


def test_kinds_are_stable_strings() -> None:
    assert [k.value for k in IdentifierKind] == ["aadhaar", "pan", "gstin", "udyam", "mobile"]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IdentifierKind.AADHAAR, "234123412347"),
        (IdentifierKind.PAN, "ABCXD1234E"),
        (IdentifierKind.GSTIN, "27ABCPD1234E1ZZ"),
        (IdentifierKind.UDYAM, "UDYAM-MH-19-001234"),
        (IdentifierKind.MOBILE, "5876543210"),
    ],
)
def test_errors_name_the_kind_but_never_echo_the_value(kind: IdentifierKind, value: str) -> None:
    with pytest.raises(IdentifierInvalid) as info:
        normalize(kind, value)
    error = info.value
    assert error.code == "identity.identifier_invalid"
    assert error.status == 422
    assert isinstance(error, ValidationError)
    assert error.extra["kind"] == kind.value
    rendered = " ".join([str(error), error.diagnostics(), json.dumps(error.problem()), repr(error)])
    assert value not in rendered
    assert value[:6] not in rendered
    assert error.__cause__ is None
