"""The record of what this log published, kept outside the database.

A transparency log must never sign two histories.  The database alone cannot guarantee it:
restored from a backup, it forgets every checkpoint signed after the backup, and the log
would sign a second root for sizes it had already published.  So each checkpoint is also
recorded here — a small JSON file beside the data directory (``COMMONS_LOG_PUBLISHED_FILE``,
default ``<data_dir>/log-published.json``) that a database restore does not touch — written
atomically and fsynced *before* the checkpoint is committed and served.  The file is the
first of the sources :mod:`credit_commons.ledger.continuity` compares the database with.

It holds, per log origin, the newest published checkpoint (size, root, the signed note), and
the origins that were frozen when an operator declared a new log origin.  It only moves
forward: a record for a smaller size is ignored, a different root at the recorded size is
refused.  See docs/log.md, "Restores never fork the log".
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from credit_commons.core.encoding import JsonObject, b64_decode
from credit_commons.core.errors import CommonsError, ConfigurationError
from credit_commons.core.files import path_error, write_private
from credit_commons.ledger.errors import LogDiverged
from credit_commons.ledger.rfc6962 import Hash

__all__ = ["FORMAT", "FrozenLog", "PublishedFile", "PublishedHead", "PublishedRecord"]

FORMAT = "credit-commons-log-published/v1"
# The file holds one entry per origin ever used: a few hundred bytes each.
_MAX_BYTES = 1 << 20


class PublishedFileInvalid(ConfigurationError):
    """The published-checkpoint file exists but is not a record this platform wrote."""

    code = "log.published_file_invalid"
    title = "Published-checkpoint record invalid"


@dataclass(frozen=True)
class PublishedHead:
    """The newest checkpoint published under one origin."""

    origin: str
    size: int
    root: Hash
    note: str
    at: str


@dataclass(frozen=True)
class FrozenLog:
    """An origin that will never be signed again: a new origin was declared after it."""

    origin: str
    successor: str
    reason: str
    at: str


@dataclass(frozen=True)
class PublishedRecord:
    """The whole file: the newest head per origin and the frozen origins."""

    heads: dict[str, PublishedHead] = field(default_factory=dict)
    frozen: dict[str, FrozenLog] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        """The file's JSON document."""
        return {
            "format": FORMAT,
            "logs": {
                o: {"size": h.size, "root": h.root.b64(), "note": h.note, "at": h.at}
                for o, h in sorted(self.heads.items())
            },
            "frozen": {
                o: {"successor": f.successor, "reason": f.reason, "at": f.at}
                for o, f in sorted(self.frozen.items())
            },
        }

    @classmethod
    def from_json(cls, value: Any) -> PublishedRecord:
        """Parse the file's document; raises :class:`PublishedFileInvalid`."""
        try:
            if not isinstance(value, dict) or value.get("format") != FORMAT:
                raise ValueError("not a published-checkpoint record")
            heads = {
                str(o): PublishedHead(
                    str(o),
                    int(h["size"]),
                    Hash(b64_decode(h["root"])),
                    str(h["note"]),
                    str(h["at"]),
                )
                for o, h in value["logs"].items()
            }
            frozen = {
                str(o): FrozenLog(str(o), str(f["successor"]), str(f["reason"]), str(f["at"]))
                for o, f in value["frozen"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError, CommonsError) as e:
            raise PublishedFileInvalid(
                "the published-checkpoint file is not a record this platform wrote",
                hint="restore it from the copy you keep, or move it aside only if you know "
                "this log never published (docs/log.md)",
            ) from e
        return cls(heads, frozen)


class PublishedFile:
    """The published-checkpoint record at ``path`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")

    def read(self) -> PublishedRecord:
        """The record (empty when the file does not exist yet).

        Raises :class:`PublishedFileInvalid`, or a ``file.*`` error when it cannot be read.
        """
        try:
            with self.path.open("rb") as handle:
                data = handle.read(_MAX_BYTES + 1)
        except FileNotFoundError:
            return PublishedRecord()
        except OSError as e:
            raise path_error(e, "read") from e
        if len(data) > _MAX_BYTES:
            raise PublishedFileInvalid("the published-checkpoint file is too large")
        try:
            value = json.loads(data)
        except ValueError as e:
            raise PublishedFileInvalid("the published-checkpoint file is not JSON") from e
        return PublishedRecord.from_json(value)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # One writer at a time across processes (the worker, a CLI command): a read, a
        # decision and a rename happen under an exclusive lock on a companion file.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise path_error(e, "lock") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, record: PublishedRecord) -> None:
        data = json.dumps(record.to_json(), indent=1, sort_keys=True).encode() + b"\n"
        try:
            write_private(self.path, data)
        except OSError as e:
            raise path_error(e, "write") from e

    def record(self, origin: str, size: int, root: Hash, note: str, at: datetime) -> None:
        """Record that ``origin`` published the checkpoint ``note`` of ``size``/``root``.

        Durable (fsynced, atomically renamed) when it returns.  A smaller size than the one
        recorded leaves the record as it is (another process published further).  Raises
        :class:`~credit_commons.ledger.errors.LogDiverged` for another root at the
        recorded size or for a frozen origin, and a ``file.*`` error when the file cannot be
        written: the caller must then not publish.
        """
        with self._locked():
            current = self.read()
            if origin in current.frozen:
                raise LogDiverged(
                    f"log origin {origin!r} is frozen: a new origin "
                    f"{current.frozen[origin].successor!r} was declared",
                    extra={"kind": "frozen", "origin": origin},
                )
            head = current.heads.get(origin)
            if head is not None and head.size > size:
                return
            if head is not None and head.size == size:
                if head.root != root:
                    raise LogDiverged(
                        f"a checkpoint of size {size} with another root was already published",
                        extra={"kind": "different", "published_size": size},
                    )
                return
            heads = dict(current.heads)
            heads[origin] = PublishedHead(origin, size, root, note, at.isoformat())
            self._write(PublishedRecord(heads, dict(current.frozen)))

    def freeze(self, origin: str, successor: str, reason: str, at: datetime) -> None:
        """Record that ``origin`` is frozen in favour of ``successor`` (durable on return)."""
        with self._locked():
            current = self.read()
            frozen = dict(current.frozen)
            frozen[origin] = FrozenLog(origin, successor, reason, at.isoformat())
            self._write(PublishedRecord(dict(current.heads), frozen))
