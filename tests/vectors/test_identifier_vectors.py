"""Published Indian identifier examples and their tampered siblings.

Provenance of every value: tests/vectors/identity/README.md.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credit_commons.identity.errors import IdentifierInvalid
from credit_commons.identity.identifiers import (
    PAN_HOLDER_TYPES,
    IdentifierKind,
    gstin_check_character,
    normalize,
    verhoeff_check_digit,
)

HERE = Path(__file__).parent / "identity"
ALNUM = string.digits + string.ascii_uppercase


def _load(name: str) -> dict[str, Any]:
    data = json.loads((HERE / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


VERHOEFF = _load("verhoeff.json")
VECTORS = {
    IdentifierKind.AADHAAR: _load("aadhaar.json"),
    IdentifierKind.PAN: _load("pan.json"),
    IdentifierKind.GSTIN: _load("gstin.json"),
    IdentifierKind.UDYAM: _load("udyam.json"),
}

VALID = [(kind, entry) for kind, data in VECTORS.items() for entry in data["valid"]]
INVALID = [(kind, entry) for kind, data in VECTORS.items() for entry in data["invalid"]]


def _id(case: tuple[IdentifierKind, dict[str, Any]]) -> str:
    return f"{case[0]}-{case[1]['input']}"


def test_every_entry_names_a_documented_source() -> None:
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    entries = [*VERHOEFF["check_digits"], *VERHOEFF["invalid_numbers"]]
    entries += [e for data in VECTORS.values() for e in data["valid"] + data["invalid"]]
    for entry in entries:
        assert entry["source"]
        for source in entry["source"]:
            assert f"`{source}`" in readme, source


# -- accepting vectors ---------------------------------------------------------------------


@pytest.mark.parametrize("case", VERHOEFF["check_digits"], ids=lambda c: c["payload"])
def test_verhoeff_published_check_digits(case: dict[str, Any]) -> None:
    assert verhoeff_check_digit(case["payload"]) == case["check_digit"]


@pytest.mark.parametrize("case", VERHOEFF["invalid_numbers"], ids=lambda c: c["number"])
def test_verhoeff_published_invalid_numbers(case: dict[str, Any]) -> None:
    number = case["number"]
    assert verhoeff_check_digit(number[:-1]) != number[-1]


@pytest.mark.parametrize("case", VALID, ids=[_id(c) for c in VALID])
def test_published_valid_identifiers_normalise(case: tuple[IdentifierKind, dict[str, Any]]) -> None:
    kind, entry = case
    assert normalize(kind, entry["input"]) == entry["canonical"]
    # The canonical form is a fixed point, and case or surrounding space do not matter.
    assert normalize(kind, entry["canonical"]) == entry["canonical"]
    assert normalize(kind, f"  {entry['input'].lower()} ") == entry["canonical"]


@pytest.mark.parametrize("case", INVALID, ids=[_id(c) for c in INVALID])
def test_published_invalid_identifiers_are_rejected(
    case: tuple[IdentifierKind, dict[str, Any]],
) -> None:
    kind, entry = case
    with pytest.raises(IdentifierInvalid) as info:
        normalize(kind, entry["input"])
    assert info.value.kind == kind
    assert info.value.reason == entry["reason"]
    # The error never repeats the value.
    assert entry["input"] not in info.value.diagnostics()
    assert entry["input"] not in json.dumps(info.value.problem())


# -- tampered siblings -----------------------------------------------------------------------


def substitutions(value: str, alphabet: str) -> Iterator[str]:
    for i, char in enumerate(value):
        for other in alphabet:
            if other != char:
                yield value[:i] + other + value[i + 1 :]


def adjacent_transpositions(value: str) -> Iterator[str]:
    for i in range(len(value) - 1):
        if value[i] != value[i + 1]:
            yield value[:i] + value[i + 1] + value[i] + value[i + 2 :]


def _canonical(kind: IdentifierKind) -> list[str]:
    return [e["canonical"] for e in VECTORS[kind]["valid"]]


def _assert_all_rejected(kind: IdentifierKind, siblings: list[str]) -> None:
    accepted = []
    for sibling in siblings:
        try:
            normalize(kind, sibling)
        except IdentifierInvalid:
            continue
        accepted.append(sibling)
    assert not accepted, accepted


@pytest.mark.parametrize(
    "case", VERHOEFF["check_digits"], ids=lambda c: c["payload"] + c["check_digit"]
)
def test_verhoeff_siblings_fail_the_check(case: dict[str, Any]) -> None:
    number = case["payload"] + case["check_digit"]
    siblings = [*substitutions(number, string.digits), *adjacent_transpositions(number)]
    assert siblings
    for sibling in siblings:
        assert verhoeff_check_digit(sibling[:-1]) != sibling[-1], sibling


@pytest.mark.parametrize("number", _canonical(IdentifierKind.AADHAAR))
def test_aadhaar_siblings_are_rejected(number: str) -> None:
    siblings = [
        *substitutions(number, string.digits),  # includes every wrong check digit
        *adjacent_transpositions(number),
        number[:-1],
        number + "0",
    ]
    assert len(siblings) >= 12 * 9
    _assert_all_rejected(IdentifierKind.AADHAAR, siblings)


@pytest.mark.parametrize("gstin", _canonical(IdentifierKind.GSTIN))
def test_gstin_siblings_are_rejected(gstin: str) -> None:
    assert gstin_check_character(gstin[:14]) == gstin[14]
    siblings = [
        *substitutions(gstin, ALNUM),  # includes every wrong check character
        *adjacent_transpositions(gstin),
        gstin[:-1],
        gstin + "0",
    ]
    assert len(siblings) >= 15 * 35
    _assert_all_rejected(IdentifierKind.GSTIN, siblings)


def _pan_siblings(pan: str) -> list[str]:
    siblings = [
        pan[:4] + pan[5] + pan[4] + pan[6:],  # letter/digit boundary after the 5th character
        pan[:8] + pan[9] + pan[8],  # digit/letter boundary before the check letter
        pan[:5] + "0000" + pan[9],
        pan[:5] + "A" + pan[6:],  # a digit replaced by a letter
        pan[:2] + "9" + pan[3:],  # a letter replaced by a digit
        pan[:-1] + "7",  # check letter replaced by a digit
        pan[:-1],
        pan + "A",
    ]
    siblings += [
        pan[:3] + letter + pan[4:]
        for letter in string.ascii_uppercase
        if letter not in PAN_HOLDER_TYPES
    ]
    return siblings


@pytest.mark.parametrize("pan", _canonical(IdentifierKind.PAN))
def test_pan_format_breaking_siblings_are_rejected(pan: str) -> None:
    _assert_all_rejected(IdentifierKind.PAN, _pan_siblings(pan))


@pytest.mark.parametrize("udyam", _canonical(IdentifierKind.UDYAM))
def test_udyam_format_breaking_siblings_are_rejected(udyam: str) -> None:
    siblings = [
        udyam.replace("-", "", 1),
        udyam.replace("-", " "),
        "UDYOG" + udyam[5:],
        udyam[:6] + "1" + udyam[7:],  # digit in the state letters
        udyam[:9] + "A" + udyam[10:],  # letter in the district
        udyam[:-1],
        udyam + "0",
        udyam[:8] + udyam[9:],  # a hyphen missing in the middle
    ]
    _assert_all_rejected(IdentifierKind.UDYAM, siblings)
