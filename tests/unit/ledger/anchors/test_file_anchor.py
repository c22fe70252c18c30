"""Unit tests of the file anchor journal (credit_commons.ledger.anchors.file).

Every accepted journal has tampered siblings that must be rejected: an edited, deleted,
swapped, inserted or non-canonical line, and a file cut mid-line or at a line boundary.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from credit_commons.core.errors import ConfigurationError
from credit_commons.ledger.anchors import (
    AnchorInvalid,
    AnchorNotFound,
    AnchorPublishFailed,
    AnchorReceipt,
    AnchorRecord,
    FileAnchorBackend,
    verify_journal,
)

ZEROS = "0" * 64


def record(i: int) -> AnchorRecord:
    return AnchorRecord(f"log.example/{i % 3}", i, hashlib.sha256(str(i).encode()).digest())


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "anchors.jsonl"


@pytest.fixture
def filled(journal: Path) -> tuple[FileAnchorBackend, list[AnchorReceipt]]:
    """A journal with four entries and their receipts."""
    backend = FileAnchorBackend(journal)
    return backend, [backend.publish(record(i)) for i in range(4)]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_round_trip(filled: tuple[FileAnchorBackend, list[AnchorReceipt]], journal: Path) -> None:
    backend, receipts = filled
    assert [backend.read_back(r) for r in receipts] == [record(i) for i in range(4)]
    assert verify_journal(journal) == 4
    # A second backend on the same file (another process, later) reads the same.
    assert FileAnchorBackend(str(journal)).read_back(receipts[2]) == record(2)


def test_line_format_vector(journal: Path) -> None:
    receipt = FileAnchorBackend(journal).publish(AnchorRecord("log.example/a", 5, bytes(32)))
    line = (
        b'{"origin":"log.example/a","prev":"' + ZEROS.encode() + b'",'
        b'"root":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","seq":0,"size":"5"}\n'
    )
    assert journal.read_bytes() == line
    assert receipt == AnchorReceipt("file", "0:" + hashlib.sha256(line[:-1]).hexdigest())


def test_hash_chain(filled: tuple[FileAnchorBackend, list[AnchorReceipt]], journal: Path) -> None:
    _, receipts = filled
    prev = ZEROS
    for seq, (raw, receipt) in enumerate(zip(lines_of(journal), receipts, strict=True)):
        entry = json.loads(raw)
        assert (entry["seq"], entry["prev"]) == (seq, prev)
        prev = hashlib.sha256(raw[:-1]).hexdigest()
        assert receipt.locator == f"{seq}:{prev}"


def test_large_sizes_and_utf8_origins_round_trip(journal: Path) -> None:
    backend = FileAnchorBackend(journal)
    wide = AnchorRecord('é"\\' * 63, 2**64 - 1, b"\xff" * 32)
    assert backend.read_back(backend.publish(wide)) == wide
    assert verify_journal(journal) == 1


def test_file_mode_is_0600(journal: Path) -> None:
    old = os.umask(0)
    try:
        FileAnchorBackend(journal).publish(record(0))
    finally:
        os.umask(old)
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["", "File", "a b", "x" * 65])
def test_bad_name_is_a_configuration_error(journal: Path, name: str) -> None:
    with pytest.raises(ConfigurationError):
        FileAnchorBackend(journal, name=name)


def test_nothing_touches_disk_before_publish(journal: Path) -> None:
    FileAnchorBackend(journal)
    assert not journal.exists()


def test_empty_journal_verifies(journal: Path) -> None:
    journal.touch()
    assert verify_journal(journal) == 0


def test_missing_journal_is_not_found(journal: Path) -> None:
    with pytest.raises(AnchorNotFound):
        verify_journal(journal)
    with pytest.raises(AnchorNotFound):
        FileAnchorBackend(journal).read_back(AnchorReceipt("file", "0:" + ZEROS))


def test_unwritable_location_fails_to_publish(tmp_path: Path) -> None:
    backend = FileAnchorBackend(tmp_path / "no" / "such" / "dir.jsonl")
    with pytest.raises(AnchorPublishFailed) as caught:
        backend.publish(record(0))
    assert caught.value.retryable


@pytest.mark.parametrize(
    "receipt",
    [
        AnchorReceipt("evm", "0:" + ZEROS),
        AnchorReceipt("file", "0"),
        AnchorReceipt("file", "01:" + ZEROS),
        AnchorReceipt("file", "-1:" + ZEROS),
        AnchorReceipt("file", "0:" + ZEROS.upper()),
        AnchorReceipt("file", "0:" + ZEROS[:-1]),
        AnchorReceipt("file", "0:" + ZEROS),  # right place, wrong hash
        AnchorReceipt("file", "9:" + ZEROS),  # past the end
    ],
)
def test_foreign_or_malformed_receipts_are_rejected(
    filled: tuple[FileAnchorBackend, list[AnchorReceipt]], receipt: AnchorReceipt
) -> None:
    backend, _ = filled
    with pytest.raises(AnchorInvalid):
        backend.read_back(receipt)


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def edit(raw: bytes, **changes: object) -> bytes:
    """The line with some members changed, still in canonical form."""
    entry = json.loads(raw)
    entry.update(changes)
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def tamper_edit_root(lines: list[bytes]) -> list[bytes]:
    lines[1] = edit(lines[1], root="A" * 43 + "=")
    return lines


def tamper_edit_size(lines: list[bytes]) -> list[bytes]:
    lines[1] = edit(lines[1], size="1000")
    return lines


def tamper_edit_origin(lines: list[bytes]) -> list[bytes]:
    lines[1] = edit(lines[1], origin="evil.example/log")
    return lines


def tamper_delete(lines: list[bytes]) -> list[bytes]:
    del lines[1]
    return lines


def tamper_delete_and_renumber(lines: list[bytes]) -> list[bytes]:
    # Deleting a line and fixing the sequence numbers still breaks the hash chain.
    del lines[1]
    return [lines[0]] + [edit(raw, seq=i + 1) for i, raw in enumerate(lines[1:])]


def tamper_swap(lines: list[bytes]) -> list[bytes]:
    lines[1], lines[2] = lines[2], lines[1]
    return lines


def tamper_swap_and_renumber(lines: list[bytes]) -> list[bytes]:
    lines[1], lines[2] = edit(lines[2], seq=1), edit(lines[1], seq=2)
    return lines


def tamper_replay(lines: list[bytes]) -> list[bytes]:
    lines.insert(1, lines[0])
    return lines


def tamper_whitespace(lines: list[bytes]) -> list[bytes]:
    lines[1] = lines[1].replace(b",", b", ", 1)
    return lines


def tamper_reordered_keys(lines: list[bytes]) -> list[bytes]:
    entry = json.loads(lines[1])
    lines[1] = json.dumps(dict(reversed(entry.items())), separators=(",", ":")).encode() + b"\n"
    return lines


def tamper_duplicate_key(lines: list[bytes]) -> list[bytes]:
    lines[1] = lines[1][:-2] + b',"size":"1"}\n'
    return lines


def tamper_size_as_number(lines: list[bytes]) -> list[bytes]:
    lines[1] = edit(lines[1], size=1)
    return lines


def tamper_bit_flip(lines: list[bytes]) -> list[bytes]:
    raw = bytearray(lines[1])
    raw[20] ^= 0x01
    lines[1] = bytes(raw)
    return lines


def tamper_crlf(lines: list[bytes]) -> list[bytes]:
    lines[1] = lines[1][:-1] + b"\r\n"
    return lines


def tamper_blank_line(lines: list[bytes]) -> list[bytes]:
    lines.insert(1, b"\n")
    return lines


def tamper_truncate_mid_line(lines: list[bytes]) -> list[bytes]:
    lines[1] = lines[1][:30]
    return lines[:2]


def tamper_drop_newline(lines: list[bytes]) -> list[bytes]:
    lines[1] = lines[1][:-1]
    return lines[:2]


def tamper_not_json(lines: list[bytes]) -> list[bytes]:
    lines[1] = b"\xff\xfe not json\n"
    return lines


TAMPERINGS = [
    tamper_edit_root,
    tamper_edit_size,
    tamper_edit_origin,
    tamper_delete,
    tamper_delete_and_renumber,
    tamper_swap,
    tamper_swap_and_renumber,
    tamper_replay,
    tamper_whitespace,
    tamper_reordered_keys,
    tamper_duplicate_key,
    tamper_size_as_number,
    tamper_bit_flip,
    tamper_crlf,
    tamper_blank_line,
    tamper_truncate_mid_line,
    tamper_drop_newline,
    tamper_not_json,
]


@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_tampered_journal_is_rejected(
    filled: tuple[FileAnchorBackend, list[AnchorReceipt]], journal: Path, tamper: object
) -> None:
    backend, receipts = filled
    rewrite(journal, tamper(lines_of(journal)))  # type: ignore[operator]
    with pytest.raises(AnchorInvalid):
        verify_journal(journal)
    # Line 0 precedes every tampering and still reads back; line 1 and later do not.
    assert backend.read_back(receipts[0]) == record(0)
    for receipt in receipts[1:]:
        with pytest.raises(AnchorInvalid):
            backend.read_back(receipt)


def test_edited_last_line_is_caught_by_its_receipt(
    filled: tuple[FileAnchorBackend, list[AnchorReceipt]], journal: Path
) -> None:
    backend, receipts = filled
    lines = lines_of(journal)
    lines[-1] = edit(lines[-1], size="999")
    rewrite(journal, lines)
    # The chain alone cannot tell: nothing follows the last line.  Its receipt can.
    assert verify_journal(journal) == 4
    with pytest.raises(AnchorInvalid):
        backend.read_back(receipts[-1])


def test_whole_lines_cut_from_the_end_are_caught_by_receipts(
    filled: tuple[FileAnchorBackend, list[AnchorReceipt]], journal: Path
) -> None:
    backend, receipts = filled
    rewrite(journal, lines_of(journal)[:2])
    assert verify_journal(journal) == 2
    assert backend.read_back(receipts[1]) == record(1)
    for receipt in receipts[2:]:
        with pytest.raises(AnchorInvalid, match="truncated"):
            backend.read_back(receipt)


@pytest.mark.parametrize("tail", [b'{"origin":"x"', b"garbage\n", b"\n"])
def test_publish_refuses_to_extend_a_broken_tail(
    filled: tuple[FileAnchorBackend, list[AnchorReceipt]], journal: Path, tail: bytes
) -> None:
    backend, _ = filled
    with journal.open("ab") as f:
        f.write(tail)
    before = journal.read_bytes()
    with pytest.raises(AnchorInvalid):
        backend.publish(record(9))
    assert journal.read_bytes() == before


def test_publish_continues_a_chain_written_by_another_backend(
    filled: tuple[FileAnchorBackend, list[AnchorReceipt]], journal: Path
) -> None:
    receipt = FileAnchorBackend(journal).publish(record(4))
    assert receipt.locator.startswith("4:")
    assert verify_journal(journal) == 5


def test_long_journal_tail_is_found(journal: Path) -> None:
    # Lines longer than the 4 KiB tail chunk do not occur, but several chunks of file do.
    backend = FileAnchorBackend(journal)
    big = [AnchorRecord("o" * 255, i, bytes(32)) for i in range(40)]
    receipts = [backend.publish(r) for r in big]
    assert journal.stat().st_size > 3 * 4096
    assert verify_journal(journal) == 40
    assert backend.read_back(receipts[-1]) == big[-1]


def test_concurrent_appends_from_threads_keep_one_chain(journal: Path) -> None:
    # Two backend objects share the file, so only flock (not the object's lock) orders
    # appends between them, as between processes.
    backends = [FileAnchorBackend(journal), FileAnchorBackend(journal)]
    receipts: list[tuple[AnchorReceipt, AnchorRecord]] = []
    guard = threading.Lock()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for i in range(25):
            rec = record(n * 100 + i)
            receipt = backends[n % 2].publish(rec)
            with guard:
                receipts.append((receipt, rec))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify_journal(journal) == 200
    assert sorted(int(r.locator.split(":")[0]) for r, _ in receipts) == list(range(200))
    for receipt, rec in receipts:
        assert backends[0].read_back(receipt) == rec


APPENDER = """
import sys
from credit_commons.ledger.anchors import AnchorRecord, FileAnchorBackend
backend = FileAnchorBackend(sys.argv[1])
for i in range(30):
    backend.publish(AnchorRecord("proc/" + sys.argv[2], i, bytes(32)))
"""


def test_concurrent_appends_from_processes_keep_one_chain(journal: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(journal), str(n)]) for n in range(3)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert verify_journal(journal) == 90


def test_file_backend_does_not_import_web3() -> None:
    code = (
        "import sys, credit_commons.ledger.anchors as a; a.FileAnchorBackend; "
        "assert 'web3' not in sys.modules and 'vyper' not in sys.modules, 'eager import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
