"""C2SP tlog-checkpoint@v1.0.0: the signed tree head of a transparency log.

A checkpoint is a signed note whose text is exactly: the origin line, the tree size in
decimal, the base64 root hash, and optional extension lines (§Note text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from credit_commons.ledger import note as note_format
from credit_commons.ledger.errors import CheckpointInvalid, HashInvalid, NoteInvalid
from credit_commons.ledger.rfc6962 import MAX_TREE_SIZE, Hash

__all__ = ["Checkpoint", "verify_checkpoint"]

# §Note text 2: ASCII decimal without leading zeroes (a lone "0" for the empty tree).
_SIZE = re.compile("0|[1-9][0-9]*")


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line or "\n" in line:
        raise CheckpointInvalid(f"{what} must be one non-empty line")
    try:
        note_format.check_text(line + "\n")
    except NoteInvalid as e:
        raise CheckpointInvalid(f"{what}: {e.detail}") from e


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint: origin, tree size, root hash and extension lines.

    Valid once built: raises :class:`CheckpointInvalid` for an empty origin, a size outside
    ``[0, 2**64 - 1]``, a root hash that is not 32 bytes, or an empty (or multi-line) line.
    """

    origin: str
    size: int
    root_hash: Hash
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # §Note text 1: the origin MUST be non-empty; its URL shape is only a SHOULD.
        _check_line(self.origin, "origin")
        # §Note text 2 (uint64, as in RFC 9162).
        size = self.size
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
            raise CheckpointInvalid("tree size must be an integer in [0, 2**64 - 1]")
        # §Note text 3: the RFC 6962 root hash.
        try:
            object.__setattr__(self, "root_hash", Hash(self.root_hash))
        except HashInvalid as e:
            raise CheckpointInvalid(f"root hash: {e.detail}") from e
        # §Note text 4: extension lines, if any, MUST be non-empty.
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            _check_line(line, "extension line")

    def format(self) -> str:
        """The note text of this checkpoint, ending in a newline."""
        lines = (self.origin, str(self.size), self.root_hash.b64(), *self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text (without signatures).

        Raises :class:`CheckpointInvalid` unless the text is at least three non-empty lines
        — origin, canonical decimal size, canonical base64 32-byte root — each ending in a
        newline, with only non-empty extension lines after them.
        """
        try:
            note_format.check_text(text)
        except NoteInvalid as e:
            raise CheckpointInvalid(f"checkpoint text: {e.detail}") from e
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointInvalid("checkpoint needs origin, size and root hash lines")
        origin, size, root, *extensions = lines
        if not _SIZE.fullmatch(size):
            raise CheckpointInvalid("tree size must be decimal without leading zeroes")
        try:
            root_hash = Hash.from_b64(root)
        except HashInvalid as e:
            raise CheckpointInvalid(f"root hash: {e.detail}") from e
        return cls(origin, int(size), root_hash, tuple(extensions))


def verify_checkpoint(
    data: str | bytes, log_verifier: note_format.Verifier, *, origin: str | None = None
) -> Checkpoint:
    """Open a checkpoint note signed by the log, ignoring other signatures.

    1. Verify the note with the log's key (raises :class:`NoteInvalid`,
       :class:`NoteSignatureInvalid` or :class:`SignatureMissing`).
    2. Parse the text as a checkpoint (raises :class:`CheckpointInvalid`).
    3. If ``origin`` is given, require it (raises :class:`CheckpointInvalid`).
    """
    # 1.
    opened = note_format.verify_note(data, [log_verifier])
    # 2.
    checkpoint = Checkpoint.parse(opened.text)
    # 3.
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointInvalid("checkpoint is for another log origin")
    return checkpoint
