"""Published status-list vectors and their tampered siblings.

IETF Token Status List (draft-ietf-oauth-status-list §4, test-vector section) and W3C
Bitstring Status List v1.0 (§2.2, §3.4).  Provenance: tests/vectors/credentials/README.md.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from credit_commons.core.encoding import b64url_decode, b64url_encode
from credit_commons.issuer.errors import (
    StatusListInvalid,
    StatusListTooLarge,
    StatusListTooShort,
)
from credit_commons.issuer.status_list import (
    BITSTRING_MIN_ENTRIES,
    BitstringStatusList,
    StatusList,
)

HERE = Path(__file__).parent / "credentials"
TSL = HERE / "token-status-list"
BSL = HERE / "bitstring-status-list"

# CPython may be linked against zlib-ng, whose DEFLATE output differs from zlib's while
# decoding identically; byte-for-byte reproduction of the examples is only asserted on zlib.
ZLIB_IS_CLASSIC = "ng" not in zlib.ZLIB_RUNTIME_VERSION

_REVERSE_BITS = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


# -- parsing the upstream files ------------------------------------------------------------


def _json_example(name: str) -> dict[str, object]:
    """The ``{"bits", "lst"}`` object of an examples/*_json.md file (lst is line-wrapped)."""
    text = (TSL / name).read_text(encoding="utf-8")
    bits = re.search(r'"bits":\s*(\d+)', text)
    lst = re.search(r'"lst":\s*"([^"]*)"', text, re.DOTALL)
    assert bits is not None
    assert lst is not None
    return {"bits": int(bits.group(1)), "lst": re.sub(r"\s", "", lst.group(1))}


def _cbor_example(name: str) -> bytes:
    text = (TSL / name).read_text(encoding="utf-8")
    if "encoded:" in text:
        text = text.split("encoded:", 1)[1]
    return bytes.fromhex(re.sub(r"\s", "", text))


def _byte_array(name: str) -> bytes:
    text = (TSL / name).read_text(encoding="utf-8")
    found = re.search(r"byte_array\s*=\s*\[([^\]]*)\]", text)
    assert found is not None
    return bytes(int(x, 16) for x in found.group(1).split(","))


def _draft_statuses() -> dict[int, dict[int, int]]:
    """bits -> {index: status} from the draft's test-vector section."""
    text = (TSL / "test-vectors-section-from-draft.md").read_text(encoding="utf-8")
    out: dict[int, dict[int, int]] = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading = re.match(r"(\d+)-bit Status List", section)
        if heading is None:
            continue
        entries = re.findall(r"status\[(\d+)\]\s*=\s*0b([01]+)", section)
        out[int(heading.group(1))] = {int(i): int(v, 2) for i, v in entries}
    return out


DRAFT_STATUSES = _draft_statuses()
LONG_SIZE = 2**20  # "All examples are initialized with a size of 2^20 entries."


@dataclass(frozen=True)
class LongVector:
    bits: int
    json_file: str
    cbor_file: str

    @property
    def statuses(self) -> dict[int, int]:
        return DRAFT_STATUSES[self.bits]

    def expected(self) -> StatusList:
        expected = StatusList.new(LONG_SIZE, self.bits)
        for index, value in self.statuses.items():
            expected.set(index, value)
        return expected


LONG = [
    LongVector(1, "status_list_encoding1_long_json.md", "status_list_encoding1_long_cbor.md"),
    LongVector(2, "status_list_encoding2_long_json.md", "status_list_encoding2_long_cbor.md"),
    LongVector(4, "status_list_encoding4_json.md", "status_list_encoding4_cbor.md"),
    LongVector(8, "status_list_encoding8_json.md", "status_list_encoding8_cbor.md"),
]
LONG_IDS = [f"{v.bits}bit" for v in LONG]

# Draft §4.1 figure (1-bit) and §4 2-bit example, written out in the draft's text.
SHORT = [
    (
        "status_list_encoding_json.md",
        "status_list_encoding_cbor.md",
        1,
        [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1],
    ),
    (
        "status_list_encoding2_json.md",
        "status_list_encoding2_cbor.md",
        2,
        [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3],
    ),
]


def test_draft_section_lists_every_width() -> None:
    assert sorted(DRAFT_STATUSES) == [1, 2, 4, 8]
    assert [len(DRAFT_STATUSES[b]) for b in (1, 2, 4, 8)] == [11, 11, 15, 256]


# -- accepting vectors: IETF Token Status List ----------------------------------------------


@pytest.mark.parametrize(("json_file", "cbor_file", "bits", "statuses"), SHORT)
def test_short_examples_decode_to_the_drafts_statuses(
    json_file: str, cbor_file: str, bits: int, statuses: list[int]
) -> None:
    raw = _byte_array(json_file)
    assert _byte_array(cbor_file) == raw
    obj = _json_example(json_file)
    for decoded in (StatusList.from_json(obj), StatusList.from_cbor(_cbor_example(cbor_file))):
        assert decoded.bits == bits
        assert decoded.to_bytes() == raw
        assert [decoded.get(i) for i in range(decoded.size)] == statuses


@pytest.mark.parametrize(("json_file", "cbor_file", "bits", "statuses"), SHORT)
@pytest.mark.skipif(not ZLIB_IS_CLASSIC, reason="zlib-ng compresses differently")
def test_short_examples_reencode_byte_for_byte(
    json_file: str, cbor_file: str, bits: int, statuses: list[int]
) -> None:
    rebuilt = StatusList.new(len(statuses), bits)
    for index, value in enumerate(statuses):
        rebuilt.set(index, value)
    assert rebuilt.to_json() == _json_example(json_file)
    assert rebuilt.to_cbor() == _cbor_example(cbor_file)


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_long_json_decodes_to_expected_statuses(vector: LongVector) -> None:
    decoded = StatusList.from_json(_json_example(vector.json_file))
    assert decoded.bits == vector.bits
    assert decoded.size == LONG_SIZE
    for index, value in vector.statuses.items():
        assert decoded.get(index) == value, index
    # Everything not listed is VALID (0): compare the whole array.
    assert decoded == vector.expected()


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_long_cbor_decodes_to_expected_statuses(vector: LongVector) -> None:
    decoded = StatusList.from_cbor(_cbor_example(vector.cbor_file))
    assert decoded == vector.expected()
    assert decoded == StatusList.from_json(_json_example(vector.json_file))


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_long_reencodes_to_a_list_that_decodes_the_same(vector: LongVector) -> None:
    original = StatusList.from_json(_json_example(vector.json_file))
    assert StatusList.from_json(original.to_json()) == original
    assert StatusList.from_cbor(original.to_cbor()) == original
    # JSON text round trip, as a verifier would receive it.
    assert StatusList.from_json(json.loads(json.dumps(original.to_json()))) == original


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
@pytest.mark.skipif(not ZLIB_IS_CLASSIC, reason="zlib-ng compresses differently")
def test_long_reencodes_byte_for_byte(vector: LongVector) -> None:
    expected = vector.expected()
    assert expected.to_json() == _json_example(vector.json_file)
    assert expected.to_cbor() == _cbor_example(vector.cbor_file)


# -- tampered siblings: IETF Token Status List ----------------------------------------------


def _lst_bytes(vector: LongVector) -> bytes:
    return b64url_decode(str(_json_example(vector.json_file)["lst"]))


def _with_lst(vector: LongVector, compressed: bytes) -> dict[str, object]:
    return {"bits": vector.bits, "lst": b64url_encode(compressed)}


@pytest.mark.parametrize("bits", [0, 3, 5, 16, -1, "1", True, 1.0, None])
@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_unsupported_bit_width_is_rejected(vector: LongVector, bits: object) -> None:
    obj = _json_example(vector.json_file) | {"bits": bits}
    with pytest.raises(StatusListInvalid):
        StatusList.from_json(obj)


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_wrong_but_legal_bit_width_gives_wrong_statuses(vector: LongVector) -> None:
    other = 1 if vector.bits != 1 else 2
    right = StatusList.from_json(_json_example(vector.json_file))
    wrong = StatusList.from_json(_json_example(vector.json_file) | {"bits": other})
    # Read with the wrong width, at least one published status comes out different ...
    differs = [
        i
        for i, v in vector.statuses.items()
        if i < wrong.size and wrong.get(i) != v and right.get(i) == v
    ]
    assert differs
    # ... while the right width gives every one of them.
    assert all(right.get(i) == v for i, v in vector.statuses.items())


@pytest.mark.parametrize("cut", [1, 4, 5, 0.5, "header-only"])
@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_truncated_zlib_is_rejected(vector: LongVector, cut: object) -> None:
    data = _lst_bytes(vector)
    if cut == "header-only":
        truncated = data[:2]
    elif isinstance(cut, float):
        truncated = data[: int(len(data) * cut)]
    else:
        assert isinstance(cut, int)
        truncated = data[:-cut]
    with pytest.raises(StatusListInvalid):
        StatusList.from_json(_with_lst(vector, truncated))


@pytest.mark.parametrize("where", ["cmf", "flg", "body", "adler"])
@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_corrupted_zlib_is_rejected(vector: LongVector, where: str) -> None:
    data = bytearray(_lst_bytes(vector))
    position = {"cmf": 0, "flg": 1, "body": len(data) // 2, "adler": len(data) - 2}[where]
    data[position] ^= 0x10
    with pytest.raises(StatusListInvalid):
        StatusList.from_json(_with_lst(vector, bytes(data)))


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_trailing_bytes_after_zlib_are_rejected(vector: LongVector) -> None:
    with pytest.raises(StatusListInvalid):
        StatusList.from_json(_with_lst(vector, _lst_bytes(vector) + b"\x00"))


@pytest.mark.parametrize("container", ["gzip", "raw-deflate"])
@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_other_containers_are_rejected_where_zlib_is_expected(
    vector: LongVector, container: str
) -> None:
    raw = vector.expected().to_bytes()
    if container == "gzip":
        compressed = gzip.compress(raw, mtime=0)
    else:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        compressed = deflater.compress(raw) + deflater.flush()
    with pytest.raises(StatusListInvalid):
        StatusList.from_json(_with_lst(vector, compressed))


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_non_canonical_base64_is_rejected(vector: LongVector) -> None:
    data = _lst_bytes(vector)
    padded = base64.urlsafe_b64encode(data).decode()
    standard = base64.b64encode(data).decode().rstrip("=")
    for lst in (padded if "=" in padded else padded + "=", standard + "+/", "not base64!"):
        with pytest.raises(StatusListInvalid):
            StatusList.from_json({"bits": vector.bits, "lst": lst})


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: {k: v for k, v in o.items() if k != "lst"},
        lambda o: {k: v for k, v in o.items() if k != "bits"},
        lambda o: o | {"extra": 1},
        lambda o: o | {"lst": 123},
        lambda o: o | {"aggregation_uri": 5},
        lambda o: [o],
    ],
    ids=["no-lst", "no-bits", "extra-member", "lst-not-string", "bad-uri", "not-object"],
)
def test_malformed_json_members_are_rejected(mutate: object) -> None:
    obj = _json_example("status_list_encoding_json.md")
    assert callable(mutate)
    with pytest.raises(StatusListInvalid):
        StatusList.from_json(mutate(obj))


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_decompression_limit_is_enforced_exactly(vector: LongVector) -> None:
    obj = _json_example(vector.json_file)
    exact = LONG_SIZE * vector.bits // 8
    assert StatusList.from_json(obj, max_decompressed_bytes=exact).size == LONG_SIZE
    with pytest.raises(StatusListTooLarge):
        StatusList.from_json(obj, max_decompressed_bytes=exact - 1)


def test_zlib_bomb_is_rejected_with_the_default_limit() -> None:
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)  # ~64 KiB that expands to 64 MiB
    with pytest.raises(StatusListTooLarge):
        StatusList.from_json({"bits": 1, "lst": b64url_encode(bomb)})
    with pytest.raises(StatusListTooLarge):
        StatusList.from_compressed(1, bomb)


@pytest.mark.parametrize("vector", LONG, ids=LONG_IDS)
def test_bit_order_swap_gives_wrong_statuses(vector: LongVector) -> None:
    right = StatusList.from_json(_json_example(vector.json_file))
    swapped_bytes = right.to_bytes().translate(_REVERSE_BITS)
    swapped = StatusList.from_json(_with_lst(vector, zlib.compress(swapped_bytes, 9)))
    # A list written MSB first (the W3C order) by mistake decodes, but to the wrong statuses,
    wrong = [i for i, v in vector.statuses.items() if swapped.get(i) != v]
    assert wrong
    # while the published list gives the right one at every published index.
    assert all(right.get(i) == v for i, v in vector.statuses.items())


def test_bit_order_swap_on_the_short_example() -> None:
    right = StatusList.from_json(_json_example("status_list_encoding_json.md"))
    swapped = StatusList(1, right.to_bytes().translate(_REVERSE_BITS))
    # Draft §4.1: status[2] = 0 and status[5] = 1; reading byte 0xB9 MSB first flips both.
    assert (right.get(2), right.get(5)) == (0, 1)
    assert (swapped.get(2), swapped.get(5)) == (1, 0)


CBOR_SHORT = _cbor_example("status_list_encoding2_cbor.md")  # a2 64 'bits' 02 63 'lst' 4b ...


@pytest.mark.parametrize(
    "tampered",
    [
        # map head with a one-byte length (b8 02): not the preferred serialisation
        b"\xb8\x02" + CBOR_SHORT[1:],
        # indefinite-length map
        b"\xbf" + CBOR_SHORT[1:] + b"\xff",
        # bits as a non-preferred uint (18 02)
        CBOR_SHORT[:6] + b"\x18\x02" + CBOR_SHORT[7:],
        # bits as a text string "2"
        CBOR_SHORT[:6] + b"\x61\x32" + CBOR_SHORT[7:],
        # lst as a text string instead of bytes (major type 3 with the same length)
        CBOR_SHORT[:11] + bytes([0x6B]) + CBOR_SHORT[12:],
        # duplicate "bits" key
        b"\xa2" + CBOR_SHORT[1:7] + CBOR_SHORT[1:7],
        # unknown key "bitz"
        CBOR_SHORT[:5] + b"z" + CBOR_SHORT[6:],
        # trailing byte
        CBOR_SHORT + b"\x00",
        # truncated
        CBOR_SHORT[:-1],
        # an array, not a map
        b"\x82" + CBOR_SHORT[1:],
        # a single-entry map
        b"\xa1" + CBOR_SHORT[1:7],
    ],
    ids=[
        "non-preferred-map-length",
        "indefinite-map",
        "non-preferred-uint",
        "bits-as-text",
        "lst-as-text",
        "duplicate-key",
        "unknown-key",
        "trailing-byte",
        "truncated",
        "array",
        "one-entry",
    ],
)
def test_tampered_cbor_is_rejected(tampered: bytes) -> None:
    assert StatusList.from_cbor(CBOR_SHORT).to_bytes() == bytes([0xC9, 0x44, 0xF9])
    with pytest.raises(StatusListInvalid):
        StatusList.from_cbor(tampered)


# -- accepting vectors: W3C Bitstring Status List --------------------------------------------


def _w3c_credential() -> dict[str, object]:
    text = (BSL / "spec-example-BitstringStatusListCredential.txt").read_text(encoding="utf-8")
    parsed = json.loads(text)
    assert isinstance(parsed, dict)
    return parsed


def _w3c_encoded_list() -> str:
    subject = _w3c_credential()["credentialSubject"]
    assert isinstance(subject, dict)
    encoded = subject["encodedList"]
    assert isinstance(encoded, str)
    return encoded


def _w3c_indexes_into_example_list() -> list[int]:
    """statusListIndex of every example entry whose statusListCredential is the example list."""
    credential_id = _w3c_credential()["id"]
    text = (BSL / "spec-examples-other.txt").read_text(encoding="utf-8")
    entries = re.findall(
        r'"statusListIndex":\s*"(\d+)",\s*"statusListCredential":\s*"([^"]+)"', text
    )
    return sorted({int(index) for index, url in entries if url == credential_id})


def test_w3c_example_decodes_to_a_16kib_all_valid_list() -> None:
    decoded = BitstringStatusList.decode(_w3c_encoded_list())
    assert decoded.size == BITSTRING_MIN_ENTRIES
    assert decoded.to_bytes() == bytes(16384)
    indexes = _w3c_indexes_into_example_list()
    assert indexes == [94567]
    for index in indexes:
        assert decoded.get(index) == 0


def test_w3c_example_reencodes_to_a_list_that_decodes_the_same() -> None:
    decoded = BitstringStatusList.decode(_w3c_encoded_list())
    again = BitstringStatusList.decode(decoded.encode())
    assert again == decoded


def test_w3c_bit_order_is_msb_first_and_lsb_reading_is_wrong() -> None:
    listed = BitstringStatusList.decode(_w3c_encoded_list())
    listed.set(94567, 1)
    raw = listed.to_bytes()
    # W3C §2.2: index 0 is the left-most bit, so 94567 = 8 * 11820 + 7 is the last
    # (least significant) bit of byte 11820.
    assert raw[11820] == 0x01
    assert sum(raw) == 1
    decoded = BitstringStatusList.decode(listed.encode())
    assert decoded.get(94567) == 1
    # Read LSB first (the IETF order), the same bytes give the wrong answer at 94567
    # and a false positive at 94560.
    as_ietf = StatusList(1, raw)
    assert as_ietf.get(94567) == 0
    assert as_ietf.get(94560) == 1


# -- tampered siblings: W3C Bitstring Status List ---------------------------------------------


def _w3c_gzip() -> bytes:
    return b64url_decode(_w3c_encoded_list()[1:])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e[1:],  # multibase prefix missing
        lambda e: "U" + e[1:],  # wrong case
        lambda e: "z" + e[1:],  # base58btc prefix
        lambda e: "m" + e[1:],  # base64 (padded, standard alphabet) prefix
        lambda e: e + "=",  # padding
        lambda e: "u" + e[1:].replace("-", "+"),  # standard alphabet
        lambda e: "",
    ],
    ids=["no-prefix", "upper-U", "z-prefix", "m-prefix", "padded", "std-alphabet", "empty"],
)
def test_w3c_malformed_multibase_is_rejected(tamper: object) -> None:
    assert callable(tamper)
    with pytest.raises(StatusListInvalid):
        BitstringStatusList.decode(tamper(_w3c_encoded_list()))


def test_w3c_zlib_where_gzip_expected_is_rejected() -> None:
    compressed = zlib.compress(bytes(16384), 9)
    with pytest.raises(StatusListInvalid):
        BitstringStatusList.decode("u" + b64url_encode(compressed))


@pytest.mark.parametrize("where", ["truncated", "crc32", "isize", "magic", "trailing"])
def test_w3c_corrupted_gzip_is_rejected(where: str) -> None:
    data = bytearray(_w3c_gzip())
    if where == "truncated":
        data = data[:-5]
    elif where == "crc32":
        data[-8] ^= 0x01
    elif where == "isize":
        data[-1] ^= 0x01
    elif where == "magic":
        data[0] ^= 0x01
    else:
        data += b"\x00"
    with pytest.raises(StatusListInvalid):
        BitstringStatusList.decode("u" + b64url_encode(bytes(data)))


def test_w3c_list_below_minimum_is_rejected() -> None:
    short = gzip.compress(bytes(16383), mtime=0)
    with pytest.raises(StatusListTooShort):
        BitstringStatusList.decode("u" + b64url_encode(short))
    # Wider entries need proportionally more bits: 16 KiB holds only 65,536 2-bit entries.
    with pytest.raises(StatusListTooShort):
        BitstringStatusList.decode(_w3c_encoded_list(), status_size=2)


def test_w3c_decompression_limit_is_enforced() -> None:
    assert BitstringStatusList.decode(_w3c_encoded_list(), max_decompressed_bytes=16384)
    with pytest.raises(StatusListTooLarge):
        BitstringStatusList.decode(_w3c_encoded_list(), max_decompressed_bytes=16383)
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9, mtime=0)
    with pytest.raises(StatusListTooLarge):
        BitstringStatusList.decode("u" + b64url_encode(bomb))
