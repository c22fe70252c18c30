"""RFC 8785 canonicalisation against the cyberphone test data, with tampered siblings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credit_commons.core.encoding import canonical_json

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


@pytest.mark.parametrize("case", CASES)
def test_tampered_expectations_do_not_match(case: str) -> None:
    value = json.loads((JCS / "input" / f"{case}.json").read_text(encoding="utf-8"))
    expected = (JCS / "output" / f"{case}.json").read_bytes()
    produced = canonical_json(value)
    flipped = bytearray(expected)
    flipped[len(flipped) // 2] ^= 0x01
    assert produced != bytes(flipped)
    # The same value serialised with Python's default (non-canonical) rules differs too.
    if isinstance(value, dict) and len(value) > 1:
        reordered = json.dumps(dict(reversed(list(value.items()))), ensure_ascii=False)
        assert produced != reordered.encode()
