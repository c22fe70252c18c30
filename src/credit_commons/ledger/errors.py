"""Errors of the transparency log core: Merkle proofs, signed notes, checkpoints, cosignatures.

Every failed check on log data is a :class:`LogError` (an :class:`IntegrityError`, HTTP 400,
CLI exit code 7) with a stable ``code``.  A proof or tree range that cannot exist (a leaf
index past the tree size, a consistency proof from the empty tree) is a caller mistake and
raises :class:`TreeRangeInvalid` (a :class:`ValidationError`) instead.  A malformed private
signer key is a configuration problem and raises :class:`SignerKeyInvalid`.
"""

from __future__ import annotations

from credit_commons.core.errors import ConfigurationError, IntegrityError, ValidationError

__all__ = [
    "CheckpointInvalid",
    "ConsistencyProofInvalid",
    "HashInvalid",
    "InclusionProofInvalid",
    "LogDiverged",
    "LogError",
    "NoteInvalid",
    "NoteSignatureInvalid",
    "QuorumNotMet",
    "SignatureMissing",
    "SignerKeyInvalid",
    "TreeRangeInvalid",
    "VerifierKeyInvalid",
]


class LogError(IntegrityError):
    """Root of the transparency-log integrity errors: some log data failed a check."""

    code = "log.invalid"
    title = "Transparency log data invalid"


class LogDiverged(LogError):
    """The database's tree is behind, or differs from, what this log published (a restored
    backup; ledger/continuity.py).  ``extra`` carries the gap.  Exit code 7; ``/readyz``
    answers 503."""

    code = "log.diverged"
    title = "The database's log does not continue the published log"


class HashInvalid(LogError):
    """A value that should be a SHA-256 hash is not exactly 32 bytes (or is badly encoded)."""

    code = "log.hash_invalid"
    title = "Hash invalid"


class InclusionProofInvalid(LogError):
    """An inclusion proof does not prove the leaf is in the tree with the given root."""

    code = "log.inclusion_invalid"
    title = "Inclusion proof invalid"


class ConsistencyProofInvalid(LogError):
    """A consistency proof does not prove the larger tree extends the smaller one."""

    code = "log.consistency_invalid"
    title = "Consistency proof invalid"


class NoteInvalid(LogError):
    """Text that is not a well-formed signed note (C2SP signed-note §Format)."""

    code = "log.note_invalid"
    title = "Signed note malformed"


class NoteSignatureInvalid(LogError):
    """A signature by a known key failed to verify; the whole note is rejected."""

    code = "log.signature_invalid"
    title = "Note signature invalid"


class SignatureMissing(LogError):
    """No signature by a required known key verified (unknown keys are ignored by design)."""

    code = "log.signature_missing"
    title = "Required signature missing"


class QuorumNotMet(LogError):
    """Fewer distinct witnesses cosigned a checkpoint than the policy requires."""

    code = "log.quorum_not_met"
    title = "Witness quorum not met"


class CheckpointInvalid(LogError):
    """A note body that is not a valid checkpoint (C2SP tlog-checkpoint §Note text)."""

    code = "log.checkpoint_invalid"
    title = "Checkpoint invalid"


class VerifierKeyInvalid(LogError):
    """A verifier key (vkey) is malformed, has a wrong key ID, or is ambiguous in a set."""

    code = "log.verifier_key_invalid"
    title = "Verifier key invalid"


class SignerKeyInvalid(ConfigurationError):
    """A private signer key string is malformed.  The detail never contains the key."""

    code = "log.signer_key_invalid"
    title = "Signer key invalid"


class TreeRangeInvalid(ValidationError):
    """A requested leaf index, tree size or subtree lies outside what the tree can prove."""

    code = "log.range_invalid"
    title = "Tree range invalid"
