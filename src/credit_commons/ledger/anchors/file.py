"""The embedded anchor backend: an append-only, hash-chained JSON-lines journal.

Each line is the RFC 8785 canonical JSON of one entry (sorted keys, no whitespace), ended by
a newline::

    {"origin":"log.example/a","prev":"<64 hex>","root":"<base64>","seq":0,"size":"42"}

``seq`` counts lines from 0; ``prev`` is the lower-case hex SHA-256 of the previous line's
bytes (without its newline), or 64 zeros on the first line; ``root`` is padded standard
base64 (RFC 4648 §4), as checkpoints write it.  ``size`` is a decimal *string* because a tree
size is a uint64 and RFC 8785 (like I-JSON, RFC 7493 §2.2) cannot carry integers past 2**53
exactly.  A receipt's locator is ``<seq>:<hex SHA-256 of the line>``.

The chain makes an edited, deleted, reordered or truncated line evident to anyone who holds a
receipt of that line or of a later one.  The journal on its own cannot prove that its *last*
lines were not removed or rewritten; that is what receipts (and external anchors) are for.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from credit_commons.core.encoding import b64_decode, b64_encode, canonical_json, sha256_hex
from credit_commons.core.errors import ValidationError
from credit_commons.ledger.anchors.base import (
    AnchorInvalid,
    AnchorNotFound,
    AnchorPublishFailed,
    AnchorReceipt,
    AnchorRecord,
    AnchorUnavailable,
    check_backend_name,
)

__all__ = ["FileAnchorBackend", "last_anchored", "verify_journal"]

GENESIS_PREV = "0" * 64
_KEYS = frozenset({"origin", "prev", "root", "seq", "size"})
_HEX64 = re.compile("[0-9a-f]{64}")
_DECIMAL = re.compile("0|[1-9][0-9]*")
_LOCATOR = re.compile("(0|[1-9][0-9]{0,17}):([0-9a-f]{64})")
# The longest canonical line is well under 1 KiB (a 255-byte origin, escaped, plus fixed
# fields); reading lines with a bound keeps a corrupt journal from exhausting memory.
_MAX_LINE = 4096
_TAIL_CHUNK = 4096


@dataclass(frozen=True)
class _Entry:
    """One verified journal line."""

    seq: int
    record: AnchorRecord
    digest: str


def _encode(seq: int, prev: str, record: AnchorRecord) -> bytes:
    return canonical_json(
        {
            "origin": record.origin,
            "prev": prev,
            "root": b64_encode(record.root),
            "seq": seq,
            "size": str(record.size),
        }
    )


def _parse_line(line: bytes, where: str) -> tuple[int, str, AnchorRecord]:
    """Parse one line (without its newline) into (seq, prev, record); raises AnchorInvalid."""
    try:
        value: Any = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AnchorInvalid(f"{where}: not UTF-8 JSON") from e
    if not isinstance(value, dict) or set(value) != _KEYS:
        raise AnchorInvalid(f"{where}: not a journal entry")
    seq, prev, size, root = value["seq"], value["prev"], value["size"], value["root"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise AnchorInvalid(f"{where}: seq must be a non-negative integer")
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        raise AnchorInvalid(f"{where}: prev must be 64 lower-case hex digits")
    if not isinstance(size, str) or not _DECIMAL.fullmatch(size):
        raise AnchorInvalid(f"{where}: size must be a canonical decimal string")
    if not isinstance(root, str):
        raise AnchorInvalid(f"{where}: root must be base64")
    try:
        root_bytes = b64_decode(root)
    except ValidationError as e:
        raise AnchorInvalid(f"{where}: root must be canonical base64") from e
    record = AnchorRecord(value["origin"], int(size), root_bytes)
    # Only the canonical encoding is accepted, so that one entry has exactly one line (and
    # one hash); this also refuses duplicate keys, which json.loads would silently merge.
    if _encode(seq, prev, record) != line:
        raise AnchorInvalid(f"{where}: not in canonical form")
    return seq, prev, record


def _verified_entries(stream: IO[bytes], *, stop_after: int | None = None) -> Iterator[_Entry]:
    """Yield entries from the start of the journal, checking the chain as they come.

    Stops after entry ``stop_after`` or at the end of the file.  Raises AnchorInvalid.
    """
    prev = GENESIS_PREV
    index = 0
    while stop_after is None or index <= stop_after:
        raw = stream.readline(_MAX_LINE)
        if not raw:
            return
        where = f"journal line {index}"
        # A last line without its newline is an interrupted write or a cut file.
        if not raw.endswith(b"\n"):
            raise AnchorInvalid(f"{where}: incomplete line (truncated journal?)")
        line = raw[:-1]
        seq, line_prev, record = _parse_line(line, where)
        # Each line names its position and its predecessor's hash, so a deleted, inserted or
        # swapped line breaks the chain at that point.
        if seq != index:
            raise AnchorInvalid(f"{where}: seq {seq} out of order (deleted or moved line?)")
        if line_prev != prev:
            raise AnchorInvalid(f"{where}: prev does not match the hash of the line before")
        digest = sha256_hex(line)
        yield _Entry(seq, record, digest)
        prev = digest
        index += 1


def _read_last_line(fd: int) -> bytes | None:
    """The last complete line of the file (without newline), or None if the file is empty."""
    end = os.fstat(fd).st_size
    if end == 0:
        return None
    if os.pread(fd, 1, end - 1) != b"\n":
        raise AnchorInvalid("journal ends in an incomplete line (truncated or interrupted write)")
    # Scan backwards from just before the final newline for the newline that precedes it.
    tail = b""
    position = end - 1
    while position > 0:
        start = max(0, position - _TAIL_CHUNK)
        tail = os.pread(fd, position - start, start) + tail
        position = start
        cut = tail.rfind(b"\n")
        if cut >= 0:
            return tail[cut + 1 :]
        if len(tail) > _MAX_LINE:
            raise AnchorInvalid("journal's last line is too long")
    return tail


@contextmanager
def _open_for_reading(path: Path) -> Iterator[IO[bytes]]:
    """Open the journal under a shared flock, so no half-appended line is ever read."""
    try:
        stream = path.open("rb")
    except FileNotFoundError as e:
        raise AnchorNotFound("anchor journal does not exist") from e
    except OSError as e:
        raise AnchorUnavailable("anchor journal cannot be opened") from e
    with stream:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_SH)
        except OSError as e:
            raise AnchorUnavailable("anchor journal cannot be locked") from e
        # Closing the file releases the lock.
        yield stream


def verify_journal(path: str | os.PathLike[str]) -> int:
    """Check a whole journal — every line canonical, in sequence, chained — and count it.

    Returns the number of entries (0 for an empty file).  Raises :class:`AnchorInvalid` at
    the first bad line, :class:`AnchorNotFound` if the file does not exist and
    :class:`AnchorUnavailable` if it cannot be read.
    """
    count = 0
    with _open_for_reading(Path(path)) as stream:
        try:
            for _ in _verified_entries(stream):
                count += 1
        except OSError as e:
            raise AnchorUnavailable("anchor journal cannot be read") from e
    return count


def last_anchored(path: str | os.PathLike[str], origin: str) -> AnchorRecord | None:
    """The newest record of ``origin`` in the journal, or None (no journal, or no record).

    Reads the last line alone when it is ``origin``'s (the usual case: one log per journal),
    else scans the whole journal checking its chain.  Raises :class:`AnchorInvalid` for a
    malformed journal and :class:`AnchorUnavailable` when it cannot be read.
    """
    try:
        with _open_for_reading(Path(path)) as stream:
            try:
                last = _read_last_line(stream.fileno())
                if last is None:
                    return None
                _, _, record = _parse_line(last, "journal's last line")
                if record.origin == origin:
                    return record
                found = None
                for entry in _verified_entries(stream):
                    if entry.record.origin == origin:
                        found = entry.record
                return found
            except OSError as e:
                raise AnchorUnavailable("anchor journal cannot be read") from e
    except AnchorNotFound:
        return None


class FileAnchorBackend:
    """Anchors records by appending them to a hash-chained journal file (the embedded default).

    ``publish`` appends one line with ``O_APPEND``, flushes and ``fsync``s it before
    returning, under a thread lock and an exclusive ``flock``, so appenders in this process
    and in other processes never interleave or fork the chain.  The file is created with
    mode 0600.  Nothing touches the disk until the first call.
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str = "file") -> None:
        """Raises :class:`ConfigurationError` for a ``name`` unfit for receipts."""
        self.name = check_backend_name(name)
        self._path = Path(path)
        # flock() already excludes other open file descriptions, threads included; the
        # thread lock also keeps one process's appenders from busy-queueing on the kernel.
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """Where the journal lives."""
        return self._path

    def __repr__(self) -> str:
        return f"FileAnchorBackend(path={str(self._path)!r}, name={self.name!r})"

    def publish(self, record: AnchorRecord, /) -> AnchorReceipt:
        """Append ``record`` durably and return its receipt ``<seq>:<line hash>``.

        Raises :class:`AnchorPublishFailed` if the file cannot be opened, locked, written or
        synced, and :class:`AnchorInvalid` if the journal's last line is malformed (the
        chain cannot be extended; an operator must look at the file).
        """
        with self._lock:
            try:
                return self._append(record)
            except OSError as e:
                raise AnchorPublishFailed("anchor journal could not be appended to") from e

    def _append(self, record: AnchorRecord) -> AnchorReceipt:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        # 0600: the journal is the operator's record; the umask can only narrow it further.
        fd = os.open(self._path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _read_last_line(fd)
            if last is None:
                seq, prev = 0, GENESIS_PREV
            else:
                last_seq, _, _ = _parse_line(last, "journal's last line")
                seq, prev = last_seq + 1, sha256_hex(last)
            line = _encode(seq, prev, record)
            data = line + b"\n"
            # os.write may write less than asked; O_APPEND puts every piece at the end, and
            # the exclusive lock keeps other appenders out until the line is complete.
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if last is None:
            # A new file's directory entry is durable only once the directory is synced.
            _fsync_directory(self._path.parent)
        return AnchorReceipt(self.name, f"{seq}:{sha256_hex(line)}")

    def read_back(self, receipt: AnchorReceipt, /) -> AnchorRecord:
        """Re-read the line a receipt names, checking the chain from the first line to it.

        Raises :class:`AnchorInvalid` for a receipt of another backend or a malformed
        locator, a journal shorter than the receipt, or any line up to it that is not
        canonical, out of sequence, off the chain, or not the line the receipt hashed;
        :class:`AnchorNotFound` if the journal does not exist; :class:`AnchorUnavailable`
        if it cannot be read.
        """
        if receipt.backend != self.name:
            raise AnchorInvalid(f"receipt is for backend {receipt.backend!r}, not {self.name!r}")
        match = _LOCATOR.fullmatch(receipt.locator)
        if match is None:
            raise AnchorInvalid("file anchor locator must be <seq>:<64 hex digits>")
        seq, digest = int(match[1]), match[2]
        with _open_for_reading(self._path) as stream:
            try:
                found = None
                for entry in _verified_entries(stream, stop_after=seq):
                    found = entry
            except OSError as e:
                raise AnchorUnavailable("anchor journal cannot be read") from e
        if found is None or found.seq != seq:
            # publish returns a receipt only after fsync, so a missing line was removed.
            raise AnchorInvalid(f"journal has no line {seq} (truncated journal?)")
        if found.digest != digest:
            raise AnchorInvalid(f"journal line {seq} is not the line the receipt names")
        return found.record


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
