"""The log side of C2SP tlog-witness@v1.0.0: collect cosignatures on a new checkpoint.

For each witness the log sends add-checkpoint with the old size it believes the witness
is at, and a consistency proof from there.  A 409 with a ``text/x.tlog.size`` body tells
the real size; the request is then repeated once from that size.  Every returned
signature line is verified against the witness key the log was configured with before it
is accepted (§add-checkpoint: the client opens the concatenation as a note with the keys
it trusts); the witness's bytes are never trusted as they are.  A failing witness is
reported without failing the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import httpx

from credit_commons.core.errors import CommonsError, IntegrityError, ValidationError
from credit_commons.ledger import note as note_format
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.cosignature import CosignatureVerifier, TimestampedSignature
from credit_commons.ledger.errors import LogError
from credit_commons.ledger.rfc6962 import Hash
from credit_commons.ledger.witness import AddCheckpointRequest

__all__ = [
    "CollectResult",
    "CosignatureRejected",
    "WitnessCosignature",
    "WitnessEndpoint",
    "WitnessFailure",
    "WitnessRejected",
    "WitnessUnreachable",
    "collect_cosignatures",
]

# A response holds a few signature lines; anything much longer is not a witness answer.
_MAX_RESPONSE_BYTES = 64 * 1024
_TLOG_SIZE = "text/x.tlog.size"
_SIZE_BODY = re.compile("(0|[1-9][0-9]{0,19})\n")

ProofFor = Callable[[int, int], Sequence[Hash]]
LastKnownSize = Mapping[str, int] | Callable[[str], int | None]


class WitnessUnreachable(CommonsError):
    """The witness could not be reached, timed out or sent an oversized answer."""

    code = "witness.unreachable"
    title = "Witness unreachable"
    status = 502


class WitnessRejected(CommonsError):
    """The witness refused the checkpoint; ``status`` is its HTTP status.

    ``witness_size`` is the tree size the witness reported in a ``text/x.tlog.size`` 409,
    if it did.
    """

    code = "witness.rejected"
    title = "Witness refused the checkpoint"
    status = 502

    def __init__(self, detail: str, *, http_status: int, witness_size: int | None = None) -> None:
        super().__init__(detail, extra={"http_status": http_status, "witness_size": witness_size})
        self.http_status = http_status
        self.witness_size = witness_size


class CosignatureRejected(IntegrityError):
    """The witness answered 200 but no valid cosignature by its key, or a bad one."""

    code = "witness.cosignature_invalid"
    title = "Witness cosignature invalid"


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness: its submission prefix URL and cosignature/v1 vkey.

    Raises :class:`ValidationError` for a URL that is not http(s) and
    :class:`VerifierKeyInvalid` for a vkey that is not a type-0x04 key.
    """

    url: str
    vkey: str
    verifier: CosignatureVerifier = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            raise ValidationError("a witness URL must be http(s)")
        object.__setattr__(self, "verifier", CosignatureVerifier.from_vkey(self.vkey))

    @property
    def name(self) -> str:
        """The witness name (the key name of its vkey)."""
        return self.verifier.name


@dataclass(frozen=True)
class WitnessCosignature:
    """A verified cosignature: witness name, signature line, timestamp, and the size the
    witness has now recorded (the checkpoint's)."""

    witness: str
    line: str
    timestamp: int
    size: int
    signature: note_format.Signature = field(repr=False)


@dataclass(frozen=True)
class WitnessFailure:
    """A witness that gave no cosignature, why, and its tree size if it reported one."""

    witness: str
    error: CommonsError
    size: int | None = None


@dataclass(frozen=True)
class CollectResult:
    """Cosignatures and failures, each keyed by witness name."""

    cosignatures: Mapping[str, WitnessCosignature]
    failures: Mapping[str, WitnessFailure]

    def signature_lines(self) -> dict[str, str]:
        """Witness name to cosignature line (with its final newline)."""
        return {name: c.line for name, c in self.cosignatures.items()}

    def cosigned_note(self, checkpoint_note: str) -> str:
        """``checkpoint_note`` with the collected cosignatures appended (or replaced).

        Raises :class:`NoteInvalid` if the note is malformed or gets too many signatures.
        """
        opened = note_format.parse_note(checkpoint_note)
        return opened.with_signatures(*(c.signature for c in self.cosignatures.values())).format()


def collect_cosignatures(
    checkpoint_note: str,
    *,
    witnesses: Sequence[WitnessEndpoint],
    last_known_size: LastKnownSize,
    proof_for: ProofFor,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 10.0,
) -> CollectResult:
    """Ask every witness to cosign ``checkpoint_note`` (a checkpoint signed by the log).

    ``last_known_size`` gives, by witness name, the size the log believes the witness is
    at (missing: 0).  ``proof_for(old, new)`` returns the RFC 6962 consistency proof
    between two sizes of this log.  Witnesses are asked one after the other; each
    failure lands in :attr:`CollectResult.failures` (as :class:`WitnessUnreachable`,
    :class:`WitnessRejected`, :class:`CosignatureRejected` or whatever ``proof_for``
    raised) without stopping the others.  Raises :class:`NoteInvalid` or
    :class:`CheckpointInvalid` for a malformed note and :class:`ValidationError` for two
    witnesses with one name.
    """
    text = note_format.parse_note(checkpoint_note).text
    checkpoint = Checkpoint.parse(text)
    if len({w.name for w in witnesses}) != len(witnesses):
        raise ValidationError("witness names must be distinct")
    cosignatures: dict[str, WitnessCosignature] = {}
    failures: dict[str, WitnessFailure] = {}
    with httpx.Client(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        for witness in witnesses:
            known = (
                last_known_size(witness.name)
                if callable(last_known_size)
                else last_known_size.get(witness.name)
            )
            try:
                cosignatures[witness.name] = _collect_one(
                    client,
                    witness,
                    note=checkpoint_note,
                    text=text,
                    size=checkpoint.size,
                    old=known or 0,
                    proof_for=proof_for,
                )
            except WitnessRejected as e:
                failures[witness.name] = WitnessFailure(witness.name, e, e.witness_size)
            except CommonsError as e:
                failures[witness.name] = WitnessFailure(witness.name, e)
    return CollectResult(MappingProxyType(cosignatures), MappingProxyType(failures))


def _collect_one(
    client: httpx.Client,
    witness: WitnessEndpoint,
    *,
    note: str,
    text: str,
    size: int,
    old: int,
    proof_for: ProofFor,
) -> WitnessCosignature:
    url = witness.url.rstrip("/") + "/add-checkpoint"
    for attempt in range(2):
        # §add-checkpoint: no proof from size 0 or between equal sizes.  An old size past
        # the checkpoint is sent as it is, and the witness answers 400.
        proof = () if old == 0 or old >= size else tuple(proof_for(old, size))
        body = AddCheckpointRequest(old, proof, note).format()
        status, content_type, answer = _post(client, url, body)
        if status == 200:
            return _accept(witness, text, size, answer)
        if status == 409 and content_type == _TLOG_SIZE:
            reported = _parse_size(answer)
            if attempt == 0 and reported != old and reported <= size:
                old = reported  # the witness told us where it is: retry once from there
                continue
            raise WitnessRejected(
                f"witness is at tree size {reported}, checkpoint has {size}",
                http_status=status,
                witness_size=reported,
            )
        raise WitnessRejected(f"witness answered HTTP {status}", http_status=status)
    raise AssertionError("unreachable")  # pragma: no cover


def _post(client: httpx.Client, url: str, body: bytes) -> tuple[int, str, bytes]:
    try:
        with client.stream("POST", url, content=body) as response:
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > _MAX_RESPONSE_BYTES:
                    raise WitnessUnreachable("witness answer is too large")
                chunks.append(chunk)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            return response.status_code, content_type.lower(), b"".join(chunks)
    except httpx.HTTPError as e:
        raise WitnessUnreachable(f"witness request failed: {e.__class__.__name__}") from e


def _parse_size(answer: bytes) -> int:
    match = _SIZE_BODY.fullmatch(answer.decode("ascii", "replace"))
    if match is None:
        raise WitnessRejected("witness sent a malformed tree size", http_status=409)
    return int(match.group(1))


def _accept(witness: WitnessEndpoint, text: str, size: int, answer: bytes) -> WitnessCosignature:
    # §add-checkpoint: open checkpoint text + response as a note with only this witness's
    # key.  Unknown lines are ignored; a line by its key that fails rejects the answer.
    try:
        opened = note_format.verify_note(text.encode("utf-8") + b"\n" + answer, [witness.verifier])
    except LogError as e:
        raise CosignatureRejected(f"witness {witness.name}: {e.detail}") from e
    # Blank lines in the answer would move the split between text and signatures, so a
    # signature over some other text could verify; accept only our checkpoint's text.
    if opened.text != text:
        raise CosignatureRejected(f"witness {witness.name} cosigned another text")
    signature = opened.verified[0]
    stamped = TimestampedSignature.from_bytes(signature.signature)
    return WitnessCosignature(witness.name, signature.line(), stamped.timestamp, size, signature)
