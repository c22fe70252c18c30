"""RFC 8785 canonicalisation against the cyberphone test data, with tampered siblings."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from credit_commons.core.encoding import canonical_json, canonical_json_reference

JCS = Path(__file__).parent / "core" / "jcs"
CASES = sorted(p.stem for p in (JCS / "input").glob("*.json"))


def test_all_cases_present() -> None:
    assert CASES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("case", CASES)
def test_canonical_form_matches(case: str) -> None:
    value = json.loads((JCS / "input" / f"{case}.json").read_text(encoding="utf-8"))
    expected = (JCS / "output" / f"{case}.json").read_bytes()
    expected_hex = bytes.fromhex((JCS / "outhex" / f"{case}.txt").read_text().replace(" ", ""))
    assert expected == expected_hex
    assert canonical_json(value) == expected
    # Also through rfc8785 alone (canonical_json writes float-free values itself).
    assert canonical_json_reference(value) == expected


def _reversed(value: object) -> object:
    """``value`` with the members of every object in descending key order."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in sorted(value, reverse=True)}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


# The cases with an object of two or more members ("unicode" has one member).
@pytest.mark.parametrize("case", ["arrays", "french", "structures", "values", "weird"])
def test_input_member_order_does_not_change_the_output(case: str) -> None:
    value = json.loads((JCS / "input" / f"{case}.json").read_text(encoding="utf-8"))
    expected = (JCS / "output" / f"{case}.json").read_bytes()
    reordered = _reversed(value)
    # The reordering is real: serialised as it stands it differs from the canonical form.
    assert json.dumps(reordered, separators=(",", ":"), ensure_ascii=False).encode() != expected
    assert canonical_json(reordered) == expected


@pytest.mark.parametrize("case", CASES)
def test_a_changed_value_does_not_give_the_expected_output(case: str) -> None:
    value = json.loads((JCS / "input" / f"{case}.json").read_text(encoding="utf-8"))
    expected = (JCS / "output" / f"{case}.json").read_bytes()
    changed = [value, None] if not isinstance(value, list) else [*value, None]
    assert canonical_json(changed) != expected


def test_strings_are_not_unicode_normalised() -> None:
    # RFC 8785 §3.2.2.2: strings are kept as they are; "A\u030a" is not turned into "\u00c5".
    value = json.loads((JCS / "input" / "unicode.json").read_text(encoding="utf-8"))
    expected = (JCS / "output" / "unicode.json").read_bytes()
    normalised = {k: unicodedata.normalize("NFC", v) for k, v in value.items()}
    assert normalised != value
    assert canonical_json(normalised) != expected
    assert canonical_json(value) == expected
