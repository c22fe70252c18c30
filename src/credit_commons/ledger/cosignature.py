"""C2SP tlog-cosignature@v1.0.1: witness cosignatures on checkpoints, and a k-of-n policy.

A cosignature is a signed-note signature line by a witness (cosigner) whose key ID uses
signature type 0x04 and whose signature is a 72-byte ``timestamped_signature``: a uint64
big-endian POSIX timestamp followed by an Ed25519 signature over::

    cosignature/v1
    time <timestamp>
    <the whole checkpoint note text, extension lines included>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from credit_commons.core.errors import ValidationError
from credit_commons.ledger import note as note_format
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.errors import (
    CheckpointInvalid,
    LogError,
    NoteSignatureInvalid,
    QuorumNotMet,
    SignatureMissing,
    SignerKeyInvalid,
    VerifierKeyInvalid,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "MAX_TIMESTAMP",
    "CosignatureSigner",
    "CosignatureVerifier",
    "CosignedCheckpoint",
    "Cosigner",
    "TimestampedSignature",
    "cosignature_key_id",
    "cosigned_message",
    "verify_cosigned",
]

# signed-note §Signature types / tlog-cosignature §Format: timestamped Ed25519 cosignatures.
ALG_COSIGNATURE_V1 = 0x04
# §Format: the timestamp MUST NOT exceed 2^63 - 1.
MAX_TIMESTAMP = 2**63 - 1


def cosignature_key_id(name: str, public_key: bytes) -> int:
    """``SHA-256(name || "\\n" || 0x04 || public key)[:4]`` as a uint32 (§Format)."""
    return note_format.compute_key_id(name, ALG_COSIGNATURE_V1, public_key)


def _check_timestamp(timestamp: int, error: type[LogError]) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise error("cosignature timestamp must be an integer")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise error("cosignature timestamp must be in [0, 2**63 - 1]")


def _message(text: bytes, timestamp: int) -> bytes:
    # §Signed message: the header line, the timestamp line (decimal, no leading zeroes),
    # then the checkpoint note text including its final newline.
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes a witness signs for ``checkpoint_text`` at ``timestamp`` (§Signed message).

    Raises :class:`CheckpointInvalid` if the text is not a checkpoint or the timestamp is
    outside ``[0, 2**63 - 1]``.
    """
    Checkpoint.parse(checkpoint_text)
    _check_timestamp(timestamp, CheckpointInvalid)
    return _message(checkpoint_text.encode("utf-8"), timestamp)


@dataclass(frozen=True)
class TimestampedSignature:
    """``struct { u64 timestamp; u8 signature[64]; }`` (§Format, RFC 8446 §3 encoding).

    Raises :class:`NoteSignatureInvalid` for a timestamp past 2^63 - 1 or a signature that
    is not 64 bytes.
    """

    timestamp: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_timestamp(self.timestamp, NoteSignatureInvalid)
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise NoteSignatureInvalid("a cosignature holds a 64-byte Ed25519 signature")

    def to_bytes(self) -> bytes:
        """The 72-byte encoding: big-endian timestamp, then the signature."""
        return self.timestamp.to_bytes(8, "big") + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> TimestampedSignature:
        """Decode 72 bytes; raises :class:`NoteSignatureInvalid`."""
        if len(data) != 72:
            raise NoteSignatureInvalid("a cosignature is 72 bytes")
        return cls(int.from_bytes(data[:8], "big"), bytes(data[8:]))


@dataclass(frozen=True)
class CosignatureVerifier(note_format.Ed25519Verifier):
    """A witness key for cosignature/v1 (signature type 0x04); implements
    :class:`note.Verifier`.

    Raises :class:`VerifierKeyInvalid` for a bad name or a key that is not 32 bytes.
    """

    signature_type: ClassVar[int] = ALG_COSIGNATURE_V1
    type_name: ClassVar[str] = "a cosignature/v1 key"

    def verify(self, message: bytes, signature: bytes, /) -> None:
        """Check a 72-byte timestamped signature over the checkpoint text ``message``.

        Raises :class:`NoteSignatureInvalid`.
        """
        stamped = TimestampedSignature.from_bytes(signature)
        try:
            self._key.verify(stamped.signature, _message(message, stamped.timestamp))
        except InvalidSignature as e:
            raise NoteSignatureInvalid(
                f"invalid cosignature for key {self.name}+{self.key_id:08x}",
                extra={"key_name": self.name, "key_id": f"{self.key_id:08x}"},
            ) from e


@dataclass(frozen=True)
class CosignatureSigner:
    """A witness signing key over any :class:`note.RawSigner`.

    Raises :class:`SignerKeyInvalid` for a bad name or public key.
    """

    name: str
    public_key: bytes
    raw: note_format.RawSigner = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            CosignatureVerifier(self.name, self.public_key)
        except VerifierKeyInvalid as e:
            raise SignerKeyInvalid(e.detail) from e

    @classmethod
    def from_private_key(cls, name: str, key: Ed25519PrivateKey) -> CosignatureSigner:
        """A cosigner for a cryptography Ed25519 key; raises :class:`SignerKeyInvalid`."""
        return cls(name, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), key)

    @property
    def key_id(self) -> int:
        """The cosignature/v1 key ID."""
        return cosignature_key_id(self.name, self.public_key)

    def verifier(self) -> CosignatureVerifier:
        """The matching verifier."""
        return CosignatureVerifier(self.name, self.public_key)

    def cosign(self, checkpoint_text: str, timestamp: int) -> note_format.Signature:
        """A cosignature line for ``checkpoint_text`` made at POSIX time ``timestamp``.

        Raises :class:`CheckpointInvalid` for bad text or timestamp and :class:`LogError`
        if the raw signer returns something other than 64 bytes.
        """
        signature = self.raw.sign(cosigned_message(checkpoint_text, timestamp))
        if len(signature) != 64:
            raise LogError("Ed25519 signer returned a signature that is not 64 bytes")
        stamped = TimestampedSignature(timestamp, signature)
        return note_format.Signature(self.name, self.key_id, stamped.to_bytes())


@dataclass(frozen=True)
class Cosigner:
    """A witness whose cosignature verified, and the time it states."""

    name: str
    key_id: int
    public_key: bytes
    timestamp: int


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint verified under a log key and a witness quorum."""

    checkpoint: Checkpoint
    text: str
    cosigners: tuple[Cosigner, ...]


def verify_cosigned(
    note_text: str | bytes,
    log_verifier: note_format.Verifier,
    witness_verifiers: Sequence[CosignatureVerifier],
    k: int,
    *,
    origin: str | None = None,
) -> CosignedCheckpoint:
    """Verify a checkpoint signed by the log and cosigned by at least ``k`` witnesses.

    1. Check the policy: ``1 <= k <=`` the number of distinct witness public keys
       (raises :class:`ValidationError`).
    2. Open the note with the log key and all witness keys together: unknown signatures
       are ignored, and any failing signature by a known key rejects the note (raises
       :class:`NoteInvalid`, :class:`NoteSignatureInvalid` or :class:`SignatureMissing`).
    3. Require the log's own signature (raises :class:`SignatureMissing`).
    4. Parse the checkpoint and, if given, check its origin (raises
       :class:`CheckpointInvalid`).
    5. Count witnesses by distinct public key, so one key listed under two names counts
       once; fewer than ``k`` raises :class:`QuorumNotMet`.
    """
    # 1.
    distinct_keys = {w.public_key for w in witness_verifiers}
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(distinct_keys):
        raise ValidationError("witness quorum must be between 1 and the number of witnesses")
    # 2.
    opened = note_format.verify_note(note_text, [log_verifier, *witness_verifiers])
    # 3.
    log_key = (log_verifier.name, log_verifier.key_id)
    if not any((s.name, s.key_id) == log_key for s in opened.verified):
        raise SignatureMissing("checkpoint is not signed by the log")
    # 4.
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointInvalid("checkpoint is for another log origin")
    # 5.
    witnesses = {(w.name, w.key_id): w for w in witness_verifiers}
    cosigners: dict[bytes, Cosigner] = {}
    for sig in opened.verified:
        witness = witnesses.get((sig.name, sig.key_id))
        if witness is None or witness.public_key in cosigners:
            continue
        stamped = TimestampedSignature.from_bytes(sig.signature)
        cosigners[witness.public_key] = Cosigner(
            witness.name, witness.key_id, witness.public_key, stamped.timestamp
        )
    if len(cosigners) < k:
        raise QuorumNotMet(
            f"{len(cosigners)} of the required {k} witnesses cosigned the checkpoint",
            extra={"cosigned": len(cosigners), "required": k},
        )
    return CosignedCheckpoint(checkpoint, opened.text, tuple(cosigners.values()))
