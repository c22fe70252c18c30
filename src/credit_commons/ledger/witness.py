"""C2SP tlog-witness@v1.0.0 add-checkpoint, independent of HTTP: an independent witness.

A witness keeps, per trusted log origin, the latest checkpoint it cosigned (size and root
hash).  :meth:`Witness.add_checkpoint` runs every check of §add-checkpoint in the order
the spec gives them, each failure a typed error whose ``status`` is the one the spec
requires, then records the new tree head with a compare-and-set and returns the
cosignature lines (C2SP tlog-cosignature@v1.0.1).

The witness is a separate program with its own database: :class:`SqlWitnessStore` owns a
private ``MetaData`` (table ``witness_checkpoints``, created on open) outside the
platform's Alembic schema.  Tree sizes are stored as decimal text because a uint64 does
not fit a signed SQL ``BIGINT``.

The witness key file and the HTTP program live in the gateway (``gateway/witness_app.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from credit_commons.core.db import dispose_engine, make_engine
from credit_commons.core.errors import (
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from credit_commons.ledger import note as note_format
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.cosignature import MAX_TIMESTAMP, CosignatureSigner
from credit_commons.ledger.errors import LogError
from credit_commons.ledger.rfc6962 import EMPTY_ROOT, MAX_TREE_SIZE, Hash, verify_consistency

__all__ = [
    "MAX_PROOF_LINES",
    "AddCheckpointRequest",
    "CheckpointUntrusted",
    "ConsistencyRejected",
    "OldSizeMismatch",
    "OldSizeTooLarge",
    "RequestMalformed",
    "RootMismatch",
    "SqlWitnessStore",
    "TreeHead",
    "UnknownLog",
    "Witness",
    "WitnessConfig",
    "WitnessStore",
]

# §add-checkpoint: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
_DECIMAL = re.compile("0|[1-9][0-9]{0,19}")


def _is_uint64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TREE_SIZE


class RequestMalformed(ValidationError):
    """The add-checkpoint body is not old size line, proof lines, empty line, checkpoint."""

    code = "witness.request_malformed"
    title = "Malformed add-checkpoint request"
    status = 400


class OldSizeTooLarge(ValidationError):
    """The old size is larger than the checkpoint size (§add-checkpoint: 400)."""

    code = "witness.old_size_too_large"
    title = "Old size exceeds checkpoint size"
    status = 400


class UnknownLog(NotFoundError):
    """The checkpoint origin is not a log this witness trusts (§add-checkpoint: 404)."""

    code = "witness.unknown_log"
    title = "Unknown log"


class CheckpointUntrusted(ForbiddenError):
    """No signature by a trusted key of the origin verifies (§add-checkpoint: 403)."""

    code = "witness.signature_untrusted"
    title = "Checkpoint not signed by the log"


class OldSizeMismatch(ConflictError):
    """The old size is not the size the witness recorded (§add-checkpoint: 409).

    ``recorded_size`` is the size of the latest cosigned checkpoint (0 if none), which
    the HTTP layer returns as a ``text/x.tlog.size`` body.
    """

    code = "witness.old_size_mismatch"
    title = "Old size does not match the witnessed size"

    def __init__(self, recorded_size: int) -> None:
        super().__init__(
            f"the witness is at tree size {recorded_size}", extra={"size": recorded_size}
        )
        self.recorded_size = recorded_size


class RootMismatch(ConflictError):
    """Same size as the recorded checkpoint but another root hash: a fork (409)."""

    code = "witness.root_mismatch"
    title = "Root hash differs from the witnessed one"


class ConsistencyRejected(ValidationError):
    """The consistency proof does not verify, or is not empty from size 0 (422)."""

    code = "witness.consistency_invalid"
    title = "Consistency proof rejected"


@dataclass(frozen=True)
class TreeHead:
    """A witnessed tree head: size and RFC 6962 root hash.

    Raises :class:`ValidationError` for a size outside uint64 and :class:`HashInvalid`
    for a root that is not 32 bytes.
    """

    size: int
    root_hash: Hash

    def __post_init__(self) -> None:
        if not _is_uint64(self.size):
            raise ValidationError("tree size must be an integer in [0, 2**64 - 1]")
        object.__setattr__(self, "root_hash", Hash(self.root_hash))


@dataclass(frozen=True)
class AddCheckpointRequest:
    """An add-checkpoint body (§add-checkpoint), parsed but not verified.

    Raises :class:`RequestMalformed` for an old size outside uint64, more than 63 proof
    lines or a proof entry that is not a 32-byte hash.
    """

    old_size: int
    proof: tuple[Hash, ...]
    checkpoint_note: str

    def __post_init__(self) -> None:
        if not _is_uint64(self.old_size):
            raise RequestMalformed("old size must be an integer in [0, 2**64 - 1]")
        if len(self.proof) > MAX_PROOF_LINES:
            raise RequestMalformed(f"at most {MAX_PROOF_LINES} consistency proof lines")
        try:
            object.__setattr__(self, "proof", tuple(Hash(h) for h in self.proof))
        except LogError as e:
            raise RequestMalformed("each proof entry must be a 32-byte hash") from e
        if not isinstance(self.checkpoint_note, str):
            raise RequestMalformed("the checkpoint must be note text")

    def format(self) -> bytes:
        """The request body: ``old N``, one base64 hash per line, empty line, the note."""
        lines = [f"old {self.old_size}", *(h.b64() for h in self.proof)]
        return ("".join(f"{line}\n" for line in lines) + "\n" + self.checkpoint_note).encode()

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpointRequest:
        """Parse a request body; raises :class:`RequestMalformed`."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RequestMalformed("request body must be UTF-8") from e
        # The old size and proof lines never are empty, so the first empty line ends them.
        head, sep, checkpoint_note = text.partition("\n\n")
        if not sep:
            raise RequestMalformed("request body has no empty line before the checkpoint")
        old_line, *proof_lines = head.split("\n")
        size = old_line.removeprefix("old ")
        if size == old_line or not _DECIMAL.fullmatch(size):
            raise RequestMalformed("first line must be 'old <decimal size>'")
        if len(proof_lines) > MAX_PROOF_LINES:
            raise RequestMalformed(f"at most {MAX_PROOF_LINES} consistency proof lines")
        try:
            proof = tuple(Hash.from_b64(line) for line in proof_lines)
        except LogError as e:
            raise RequestMalformed("each proof line must be one base64 SHA-256 hash") from e
        return cls(int(size), proof, checkpoint_note)


@dataclass(frozen=True)
class WitnessConfig:
    """The witness's cosigning key (name and Ed25519 key) and the logs it trusts.

    ``logs`` maps each origin to its log verifier keys ``<name>+<hex id>+<base64>``
    (Ed25519, signed-note §Verifier keys).  Raises :class:`ConfigurationError` for no
    logs, an empty origin, an origin without keys, or an invalid or ambiguous key.
    """

    signer: CosignatureSigner
    logs: Mapping[str, Sequence[str]]
    verifiers: Mapping[str, tuple[note_format.Ed25519Verifier, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.logs:
            raise ConfigurationError("a witness needs at least one trusted log")
        parsed: dict[str, tuple[note_format.Ed25519Verifier, ...]] = {}
        for origin, vkeys in self.logs.items():
            if not origin or "\n" in origin or not vkeys or isinstance(vkeys, str):
                raise ConfigurationError(f"log {origin!r} needs a one-line origin and keys")
            try:
                keys = tuple(note_format.Ed25519Verifier.from_vkey(v) for v in vkeys)
            except LogError as e:
                raise ConfigurationError(f"a key of log {origin!r}: {e.detail}") from e
            if len({(k.name, k.key_id) for k in keys}) != len(set(keys)):
                raise ConfigurationError(f"log {origin!r} has two keys with one name and ID")
            parsed[origin] = keys
        frozen = {o: tuple(v) for o, v in self.logs.items()}
        object.__setattr__(self, "logs", MappingProxyType(frozen))
        object.__setattr__(self, "verifiers", MappingProxyType(parsed))

    @property
    def name(self) -> str:
        """The witness (cosigner) name written in its signature lines."""
        return self.signer.name

    @property
    def vkey(self) -> str:
        """The witness's cosignature/v1 verifier key, to configure in logs and clients."""
        return self.signer.verifier().vkey


class WitnessStore(Protocol):
    """The latest cosigned tree head per log origin."""

    def latest(self, origin: str, /) -> TreeHead | None:
        """The recorded tree head of ``origin``, or ``None`` if none was cosigned yet."""
        ...

    def compare_and_set(
        self, origin: str, expected: TreeHead | None, new: TreeHead, *, now: int
    ) -> None:
        """Atomically replace the record ``expected`` (``None``: no record) by ``new``.

        Raises :class:`OldSizeMismatch`, carrying the size now recorded, if the record is
        no longer ``expected`` (a concurrent request got there first).
        """
        ...


_metadata = sa.MetaData()
_checkpoints = sa.Table(
    "witness_checkpoints",
    _metadata,
    sa.Column("origin", sa.Text, primary_key=True),
    sa.Column("size", sa.String(20), nullable=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)


class SqlWitnessStore:
    """A :class:`WitnessStore` in SQLite or PostgreSQL (SQLAlchemy Core); owns its engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine)

    @classmethod
    def open(cls, url: str) -> SqlWitnessStore:
        """Open (and create if needed) the store at ``url``.

        Raises :class:`ConfigurationError` for a bad URL or backend.
        """
        return cls(make_engine(url, pool_size=4))

    def close(self) -> None:
        """Release the database connections."""
        dispose_engine(self._engine)

    def latest(self, origin: str, /) -> TreeHead | None:
        """The recorded tree head of ``origin``, or ``None``."""
        with self._engine.begin() as connection:
            return self._read(connection, origin)

    def compare_and_set(
        self, origin: str, expected: TreeHead | None, new: TreeHead, *, now: int
    ) -> None:
        """Replace ``expected`` by ``new`` in one statement; raises :class:`OldSizeMismatch`."""
        values = {"size": str(new.size), "root_hash": bytes(new.root_hash), "updated_at": now}
        with self._engine.begin() as connection:
            # §add-checkpoint: checking the old state and persisting the new one must be
            # atomic.  The WHERE clause (or the primary key) is the check, so the statement
            # matches no row if another request moved the record in the meantime.
            if expected is None:
                insert = (
                    postgresql_insert
                    if self._engine.dialect.name == "postgresql"
                    else sqlite_insert
                )
                statement = (
                    insert(_checkpoints)
                    .values(origin=origin, **values)
                    .on_conflict_do_nothing(index_elements=["origin"])
                    .returning(_checkpoints.c.origin)
                )
                written = connection.execute(statement).one_or_none()
            else:
                update = (
                    sa.update(_checkpoints)
                    .where(
                        _checkpoints.c.origin == origin,
                        _checkpoints.c.size == str(expected.size),
                        _checkpoints.c.root_hash == bytes(expected.root_hash),
                    )
                    .values(**values)
                    .returning(_checkpoints.c.origin)
                )
                written = connection.execute(update).one_or_none()
            # RETURNING, not rowcount: psycopg reports no row count for an upsert.
            if written is None:
                current = self._read(connection, origin)
                raise OldSizeMismatch(0 if current is None else current.size)

    @staticmethod
    def _read(connection: sa.Connection, origin: str) -> TreeHead | None:
        row = connection.execute(
            sa.select(_checkpoints.c.size, _checkpoints.c.root_hash).where(
                _checkpoints.c.origin == origin
            )
        ).one_or_none()
        return None if row is None else TreeHead(int(row.size), Hash(row.root_hash))


class Witness:
    """The add-checkpoint use case over a configuration and a store."""

    def __init__(self, config: WitnessConfig, store: WitnessStore) -> None:
        self.config = config
        self.store = store

    def add_checkpoint(self, body: bytes, now: int) -> list[str]:
        """Check an add-checkpoint body, record the checkpoint and cosign it at ``now``.

        Follows tlog-witness@v1.0.0 §add-checkpoint step by step and raises
        :class:`RequestMalformed` (400), :class:`UnknownLog` (404),
        :class:`CheckpointUntrusted` (403), :class:`OldSizeTooLarge` (400),
        :class:`OldSizeMismatch` (409, with the recorded size), :class:`ConsistencyRejected`
        (422) or :class:`RootMismatch` (409).  Returns the cosignature lines, each ending
        in a newline; nothing is recorded unless every check passed.  A ``now`` outside
        ``[0, 2**63 - 1]`` is a caller error and raises :class:`ValidationError` first.
        """
        # tlog-cosignature §Format: checked up front so that cosigning cannot fail after
        # the new tree head was persisted.
        if not _is_uint64(now) or now > MAX_TIMESTAMP:
            raise ValidationError("now must be a POSIX timestamp in [0, 2**63 - 1]")
        # 1. The body: old size line, at most 63 proof lines, empty line, checkpoint note.
        request = AddCheckpointRequest.parse(body)
        try:
            opened = note_format.parse_note(request.checkpoint_note)
            checkpoint = Checkpoint.parse(opened.text)
        except LogError as e:
            raise RequestMalformed(f"checkpoint: {e.detail}") from e
        # 2. An unknown origin is 404.
        verifiers = self.config.verifiers.get(checkpoint.origin)
        if verifiers is None:
            raise UnknownLog("this witness does not follow that log")
        # 3. Signatures by unknown keys are ignored; without a valid trusted one, 403.
        try:
            note_format.verify_note(request.checkpoint_note, verifiers)
        except LogError as e:
            raise CheckpointUntrusted("no trusted log signature verifies") from e
        # 4. The old size must not exceed the checkpoint size (400).
        old, size = request.old_size, checkpoint.size
        if old > size:
            raise OldSizeTooLarge("old size is larger than the checkpoint size")
        # 5. The old size must be the recorded size, or 0 if there is none (409).
        recorded = self.store.latest(checkpoint.origin)
        recorded_size = 0 if recorded is None else recorded.size
        if old != recorded_size:
            raise OldSizeMismatch(recorded_size)
        # The empty tree's root needs no record: every tree extends it.
        known_root = EMPTY_ROOT if recorded is None else recorded.root_hash
        # 6. The proof must be empty from size 0, and prove consistency otherwise (422).
        #    At equal sizes the roots must be identical (409).
        if old == 0 and request.proof:
            raise ConsistencyRejected("the proof must be empty when the old size is 0")
        if old == size:
            if checkpoint.root_hash != known_root:
                raise RootMismatch("same tree size as the witnessed checkpoint, other root")
            if request.proof:
                raise ConsistencyRejected("the proof must be empty for equal sizes")
        elif old > 0:
            try:
                verify_consistency(old, size, request.proof, known_root, checkpoint.root_hash)
            except LogError as e:
                raise ConsistencyRejected(e.detail) from e
        # 7. Persist atomically before answering; a concurrent winner makes this a 409.
        new = TreeHead(size, checkpoint.root_hash)
        self.store.compare_and_set(checkpoint.origin, recorded, new, now=now)
        # 8. Cosign the checkpoint text (tlog-cosignature@v1.0.1 §Signed message).
        return [self.config.signer.cosign(opened.text, now).line()]
