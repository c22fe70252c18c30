"""Unit tests of the anchor value types and errors (credit_commons.ledger.anchors.base)."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from credit_commons.core.errors import (
    CommonsError,
    IntegrityError,
    NotFoundError,
    UnavailableError,
)
from credit_commons.ledger import anchors
from credit_commons.ledger.anchors import (
    AnchorBackend,
    AnchorInvalid,
    AnchorNotFound,
    AnchorPublishFailed,
    AnchorReceipt,
    AnchorRecord,
    AnchorUnavailable,
    FileAnchorBackend,
)

ROOT = bytes(range(32))


def test_record_keeps_values() -> None:
    record = AnchorRecord("log.example/a", 42, ROOT)
    assert (record.origin, record.size, record.root) == ("log.example/a", 42, ROOT)
    with pytest.raises(FrozenInstanceError):
        record.size = 1  # type: ignore[misc]


def test_record_stores_plain_bytes() -> None:
    class Digest(bytes):
        pass

    record = AnchorRecord("o", 0, Digest(ROOT))
    assert type(record.root) is bytes
    assert AnchorRecord("o", 0, bytearray(ROOT)) == AnchorRecord("o", 0, ROOT)


def test_record_limits_are_inclusive() -> None:
    AnchorRecord("x" * 255, 2**64 - 1, ROOT)
    AnchorRecord("é" * 127, 0, ROOT)  # 254 UTF-8 bytes


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [
        ("", 1, ROOT),
        ("a\nb", 1, ROOT),
        ("a\tb", 1, ROOT),
        ("x" * 256, 1, ROOT),
        ("é" * 128, 1, ROOT),  # 128 characters but 256 UTF-8 bytes
        ("\ud800", 1, ROOT),  # a lone surrogate has no UTF-8 form
        (b"origin", 1, ROOT),
        ("o", -1, ROOT),
        ("o", 2**64, ROOT),
        ("o", True, ROOT),
        ("o", 1.0, ROOT),
        ("o", 1, ROOT[:31]),
        ("o", 1, ROOT + b"\x00"),
        ("o", 1, b""),
        ("o", 1, ROOT.hex()),
    ],
)
def test_record_rejects(origin: object, size: object, root: object) -> None:
    with pytest.raises(AnchorInvalid):
        AnchorRecord(origin, size, root)  # type: ignore[arg-type]


def test_receipt_json_round_trip() -> None:
    receipt = AnchorReceipt("evm", "eip155:1:0x" + "ab" * 32 + ":7:0")
    text = json.dumps(receipt.to_json())
    assert AnchorReceipt.from_json(json.loads(text)) == receipt


@pytest.mark.parametrize(
    "value",
    [
        {"backend": "file"},
        {"backend": "file", "locator": "0:" + "0" * 64, "extra": "x"},
        {"backend": "file", "locator": 3},
        {"backend": "", "locator": "x"},
        {"backend": "File", "locator": "x"},
        {"backend": "file", "locator": ""},
        {"backend": "file", "locator": "a b"},
        {"backend": "file", "locator": "é"},
        {"backend": "file", "locator": "x" * 513},
        ["file", "x"],
    ],
)
def test_receipt_rejects(value: object) -> None:
    with pytest.raises(AnchorInvalid):
        AnchorReceipt.from_json(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "code", "base", "retryable"),
    [
        (AnchorPublishFailed, "anchor.publish_failed", UnavailableError, True),
        (AnchorUnavailable, "anchor.unavailable", UnavailableError, True),
        (AnchorNotFound, "anchor.not_found", NotFoundError, False),
        (AnchorInvalid, "anchor.invalid", IntegrityError, False),
    ],
)
def test_error_codes_are_stable(
    error: type[anchors.AnchorError], code: str, base: type[CommonsError], retryable: bool
) -> None:
    assert error.code == code
    assert issubclass(error, base)
    assert issubclass(error, anchors.AnchorError)
    assert error.retryable is retryable
    assert error("detail").problem()["code"] == code


def test_file_backend_satisfies_protocol() -> None:
    assert isinstance(FileAnchorBackend("unused.jsonl"), AnchorBackend)


def test_public_names_have_docstrings() -> None:
    for name in anchors.__all__:
        value = getattr(anchors, name)
        assert getattr(value, "__doc__", None), name
