"""W3C Bitstring Status List v1.0 §2.1-§2.2 and §3.2 on the specification's own examples.

The example ``BitstringStatusListCredential`` (published unsecured) is secured here as a
``vc+jwt`` with a test key, and the example entries (``statusListIndex`` "94567" in
``https://example.com/credentials/status/3``) are checked against it by the Validate
Algorithm; every accepting case has tampered siblings that must be refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from credit_commons.formats.bitstring_status_list import (
    BitstringStatusEntry,
    BitstringStatusList,
    StatusVerificationError,
    status_entries,
    verify_status_list_credential,
)
from credit_commons.formats.status_list import (
    StatusIndexOutOfRange,
    StatusListInvalid,
    StatusListTooShort,
)
from credit_commons.formats.vc_jose import secure_credential
from credit_commons.formats.vc_jwt import VcJwtExpired
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey

HERE = Path(__file__).parent / "credentials" / "bitstring-status-list"
KEY = PrivateKey.generate(KeyType.P256)
NOW = 1_800_000_000  # 2027, after the example's validFrom (2021-04-05)


def _json_blocks(name: str) -> list[Any]:
    """The JSON examples of a spec extract (``// comments`` and ``...`` elisions cut)."""
    text = (HERE / name).read_text()
    blocks = []
    for block in re.findall(r"^\{\n.*?^\}", text, flags=re.DOTALL | re.MULTILINE):
        cleaned = re.sub(r"^\s*//.*$", "", block, flags=re.MULTILINE)
        if "..." in cleaned:
            continue
        blocks.append(json.loads(cleaned))
    return blocks


LIST_CREDENTIAL: dict[str, Any] = _json_blocks("spec-example-BitstringStatusListCredential.txt")[0]
# The examples with entries (the 2-bit "message" one elides members with "...": not JSON).
EXAMPLES = [b for b in _json_blocks("spec-examples-other.txt") if "credentialStatus" in b]
LIST_URI = LIST_CREDENTIAL["id"]
ENTRIES = [
    entry
    for example in EXAMPLES
    for entry in (
        example["credentialStatus"]
        if isinstance(example["credentialStatus"], list)
        else [example["credentialStatus"]]
    )
]
REVOCATION_94567 = next(
    e
    for e in ENTRIES
    if e["statusListCredential"] == LIST_URI and e["statusPurpose"] == "revocation"
)


def secured(credential: dict[str, Any], key: PrivateKey = KEY) -> str:
    return secure_credential(credential, key, kid="k1")


def check(token: str, entry: dict[str, Any], key: PrivateKey = KEY, now: int = NOW) -> int:
    return verify_status_list_credential(
        token, key.public_key, BitstringStatusEntry.from_json(entry), algs=ACCEPTED_ALGS, now=now
    )


def test_the_example_entries_parse_as_the_spec_writes_them() -> None:
    entry = BitstringStatusEntry.from_json(REVOCATION_94567)
    assert (entry.list_uri, entry.index, entry.purpose) == (LIST_URI, 94567, "revocation")
    assert entry.to_json() == REVOCATION_94567  # id = list URL + "#" + index, index a string
    parsed = [entry for example in EXAMPLES for entry in status_entries(example)]
    assert len(parsed) == len(ENTRIES) >= 5
    assert {entry.purpose for entry in parsed} == {"revocation", "suspension"}


def test_the_example_list_answers_the_example_entry() -> None:
    assert check(secured(LIST_CREDENTIAL), REVOCATION_94567) == 0  # the example list is all 0
    # The same list with bit 94567 set (MSB first) answers 1.
    revoked = BitstringStatusList.decode(LIST_CREDENTIAL["credentialSubject"]["encodedList"])
    revoked.set(94567, 1)
    changed = json.loads(json.dumps(LIST_CREDENTIAL))
    changed["credentialSubject"]["encodedList"] = revoked.encode()
    assert check(secured(changed), REVOCATION_94567) == 1


def _list(**subject: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(LIST_CREDENTIAL))
    changed["credentialSubject"].update(subject)
    return {k: v for k, v in changed.items() if v is not None}


SHORT = BitstringStatusList.new(8 * 1024, min_entries=1).encode()  # 8,192 entries < 131,072


@pytest.mark.parametrize(
    ("token", "entry", "error"),
    [
        # §3.2 step 4: the proof — another key, a changed credential.
        (
            lambda: secured(LIST_CREDENTIAL, PrivateKey.generate(KeyType.P256)),
            REVOCATION_94567,
            StatusVerificationError,
        ),
        # Step 4: a list credential for another URL answers nothing for this one.
        (
            lambda: secured({**LIST_CREDENTIAL, "id": "https://example.com/credentials/status/4"}),
            REVOCATION_94567,
            StatusVerificationError,
        ),
        (
            lambda: secured({**LIST_CREDENTIAL, "type": ["VerifiableCredential"]}),
            REVOCATION_94567,
            StatusVerificationError,
        ),
        (lambda: secured(_list(type="StatusList2021")), REVOCATION_94567, StatusVerificationError),
        # Step 5: the entry's purpose must be the list's.
        (
            lambda: secured(LIST_CREDENTIAL),
            {**REVOCATION_94567, "statusPurpose": "suspension"},
            StatusVerificationError,
        ),
        (
            lambda: secured(_list(statusPurpose="suspension")),
            REVOCATION_94567,
            StatusVerificationError,
        ),
        # Steps 6-9: the encoded list.
        (lambda: secured(_list(encodedList=SHORT)), REVOCATION_94567, StatusListTooShort),
        (lambda: secured(_list(encodedList="z" + SHORT[1:])), REVOCATION_94567, StatusListInvalid),
        (lambda: secured(_list(encodedList=None)), REVOCATION_94567, StatusListInvalid),
        # Step 10: the index inside the list.
        (
            lambda: secured(LIST_CREDENTIAL),
            {**REVOCATION_94567, "statusListIndex": "131072"},
            StatusIndexOutOfRange,
        ),
        # The list's own validity period.
        (
            lambda: secured({**LIST_CREDENTIAL, "validUntil": "2026-01-01T00:00:00Z"}),
            REVOCATION_94567,
            VcJwtExpired,
        ),
    ],
)
def test_tampered_lists_and_entries_are_refused(
    token: Any, entry: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        check(token(), entry)


def test_a_list_with_several_purposes_answers_each() -> None:
    both = secured(_list(statusPurpose=["revocation", "suspension"]))
    assert check(both, REVOCATION_94567) == 0
    assert check(both, {**REVOCATION_94567, "statusPurpose": "suspension"}) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"statusListIndex": 94567},  # §2.1: a string, not a number
        {"statusListIndex": "-1"},
        {"statusListIndex": "+7"},
        {"statusListIndex": "9.5"},
        {"statusListIndex": "1e3"},
        {"statusListIndex": "0x1F"},
        {"statusListIndex": " 7"},
        {"statusListIndex": "7\n"},
        {"statusListIndex": "\u0667"},  # ARABIC-INDIC DIGIT SEVEN: base 10, but not ASCII
        {"statusListIndex": ""},
        {"statusListIndex": "1" + "0" * 100},  # past any list (and int()'s own limit below)
        {"statusListIndex": "9" * 5000},
        {"type": "StatusList2021Entry"},
        {"statusPurpose": ""},
        {"statusListCredential": "status/3"},
        {"id": LIST_URI},  # §2.1: the entry's id MUST NOT be the list's URL
        {"statusSize": 2},
        {"statusSize": True},
    ],
)
def test_malformed_entries_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(StatusListInvalid):
        BitstringStatusEntry.from_json({**REVOCATION_94567, **bad})


@pytest.mark.parametrize(
    ("written", "index"),
    [("007", 7), ("0", 0), ("000", 0), ("094567", 94567), ("0" * 200 + "1" + "0" * 99, 10**99)],
)
def test_an_index_is_read_in_base_10_leading_zeros_included(written: str, index: int) -> None:
    # §2.1: "an arbitrary size integer greater than or equal to 0, expressed as a string in
    # base 10"; "007" expresses 7 in base 10, and nothing in §2.1 forbids leading zeros.
    entry = BitstringStatusEntry.from_json({**REVOCATION_94567, "statusListIndex": written})
    assert entry.index == index


def test_an_index_with_leading_zeros_reads_the_same_status() -> None:
    revoked = BitstringStatusList.decode(LIST_CREDENTIAL["credentialSubject"]["encodedList"])
    revoked.set(94567, 1)
    changed = json.loads(json.dumps(LIST_CREDENTIAL))
    changed["credentialSubject"]["encodedList"] = revoked.encode()
    assert check(secured(changed), {**REVOCATION_94567, "statusListIndex": "0094567"}) == 1


def test_a_status_this_verifier_cannot_check_is_refused_not_skipped() -> None:
    credential = {**EXAMPLES[0], "credentialStatus": [REVOCATION_94567, {"type": "Other"}]}
    with pytest.raises(StatusListInvalid):
        status_entries(credential)
    with pytest.raises(StatusListInvalid):
        status_entries({**EXAMPLES[0], "credentialStatus": []})
    assert status_entries({"credentialSubject": {}}) == []
