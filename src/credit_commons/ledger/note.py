"""C2SP signed-note@v1.0.0: text signed by one or more keys, with Ed25519 note keys.

A signed note is its text (ending in a newline), one blank line, and one or more signature
lines ``— <key name> base64(key ID || signature)``.  Verifiers know keys by the pair
(key name, 32-bit key ID); signatures by any other pair are ignored, every signature by a
known key must verify, and at least one must be present (§Signatures).

Keys travel as text: a verifier key (*vkey*) is ``<name>+<hex key ID>+base64(type ||
public key)`` (§Verifier keys) and a signer key (*skey*) uses the Go ``note.GenerateKey``
format ``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || Ed25519 seed)``.  Names never
contain ``+`` but base64 may, so both are split with a maximum count.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from credit_commons.core.encoding import b64_decode, b64_encode, sha256
from credit_commons.core.errors import ValidationError
from credit_commons.ledger.errors import (
    LogError,
    NoteInvalid,
    NoteSignatureInvalid,
    SignatureMissing,
    SignerKeyInvalid,
    VerifierKeyInvalid,
)

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Ed25519Signer",
    "Ed25519Verifier",
    "Note",
    "RawSigner",
    "Signature",
    "Signer",
    "VerifiedNote",
    "Verifier",
    "check_text",
    "compute_key_id",
    "format_vkey",
    "generate_key",
    "is_valid_key_name",
    "parse_note",
    "sign_note",
    "sign_text",
    "split_vkey",
    "verify_note",
]

# §Signature types: 0x01 is Ed25519 over the note text.
ALG_ED25519 = 0x01
# §Format: verifiers SHOULD limit the signature count and MUST accept at least 16.  Go's
# note package accepts 100, and so do we, so notes cosigned by many witnesses still open.
MAX_SIGNATURES = 100

_SIG_PREFIX = "\u2014 "  # em dash U+2014, then a space (§Format)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile("[0-9a-f]{8}")


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` may be a key name: non-empty, without spaces or ``+`` (§Format)."""
    # §Format: key names are non-empty and contain no Unicode spaces and no "+".  Control
    # characters are excluded too: a note containing them could never be opened.
    if not isinstance(name, str) or name == "" or "+" in name or _CONTROL.search(name):
        return False
    if any(ch.isspace() for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def compute_key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || signature type || public key)[:4]`` as a uint32 (§Signatures)."""
    digest = sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key)
    return int.from_bytes(digest[:4], "big")


def check_text(text: str) -> None:
    """Check note text: UTF-8, no control characters but newline, ends in a newline (§Format).

    Raises :class:`NoteInvalid`.
    """
    if not isinstance(text, str):
        raise NoteInvalid("note text must be a string")
    if not text.endswith("\n"):
        raise NoteInvalid("note text must end with a newline")
    if _CONTROL.search(text):
        raise NoteInvalid("note text must not contain control characters other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NoteInvalid("note text must be valid UTF-8") from e


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, 32-bit key ID and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteInvalid("key name must be non-empty without spaces or '+'")
        if isinstance(self.key_id, bool) or not isinstance(self.key_id, int):
            raise NoteInvalid("key ID must be an integer")
        if not 0 <= self.key_id < 2**32:
            raise NoteInvalid("key ID must be a uint32")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise NoteInvalid("signature must be non-empty bytes")

    def line(self) -> str:
        """The signature line, including its final newline."""
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {b64_encode(blob)}\n"

    @classmethod
    def parse_line(cls, line: str) -> Signature:
        """Parse one signature line without its newline; raises :class:`NoteInvalid`."""
        if not line.startswith(_SIG_PREFIX):
            raise NoteInvalid("signature line must start with an em dash and a space")
        parts = line[len(_SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise NoteInvalid("signature line must be '— <name> <base64>'")
        name, encoded = parts
        try:
            blob = b64_decode(encoded)
        except ValidationError as e:
            raise NoteInvalid("signature is not canonical base64") from e
        # §Format: 4 bytes of key ID followed by a signature of at least one byte.
        if len(blob) < 5:
            raise NoteInvalid("signature is too short")
        return cls(name, int.from_bytes(blob[:4], "big"), blob[4:])


@dataclass(frozen=True)
class Note:
    """A note text with its signatures; format it with :meth:`format`."""

    text: str
    signatures: tuple[Signature, ...]

    def __post_init__(self) -> None:
        check_text(self.text)
        if not self.signatures:
            raise NoteInvalid("a signed note needs at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise NoteInvalid(f"a note may carry at most {MAX_SIGNATURES} signatures")

    def format(self) -> str:
        """The signed note: text, blank line, signature lines (§Format)."""
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)

    def with_signatures(self, *signatures: Signature) -> Note:
        """This note with ``signatures`` appended, replacing any by the same name and key ID.

        Raises :class:`NoteInvalid` past :data:`MAX_SIGNATURES`.
        """
        replaced = {(s.name, s.key_id) for s in signatures}
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) not in replaced)
        return Note(self.text, kept + signatures)


def parse_note(data: str | bytes, *, max_signatures: int = MAX_SIGNATURES) -> Note:
    """Parse a signed note without verifying it (§Format).

    Raises :class:`NoteInvalid` for invalid UTF-8, control characters, a missing blank line
    or signature block, a malformed signature line, or more than ``max_signatures``.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteInvalid("note must be valid UTF-8") from e
    check_text(data)
    # The text is separated from the signatures by the last blank line, and keeps its own
    # final newline.
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteInvalid("note has no blank line before its signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block:
        raise NoteInvalid("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > max_signatures:
        raise NoteInvalid(f"note has more than {max_signatures} signatures")
    return Note(text, tuple(Signature.parse_line(line) for line in lines))


class Verifier(Protocol):
    """A known key: its name, key ID, and a check of one signature over a note text."""

    @property
    def name(self) -> str:
        """The key name used in signature lines."""
        ...

    @property
    def key_id(self) -> int:
        """The 32-bit key ID used in signatures."""
        ...

    def verify(self, message: bytes, signature: bytes, /) -> None:
        """Check ``signature`` (without key ID) over the note text ``message``.

        Raises :class:`NoteSignatureInvalid`.
        """
        ...


class RawSigner(Protocol):
    """Anything that makes a raw signature: a cryptography private key, a key-store key."""

    def sign(self, message: bytes, /) -> bytes:
        """Sign ``message``."""
        ...


class Signer(Protocol):
    """A note signer: a key name, key ID, and signatures over a note text."""

    @property
    def name(self) -> str:
        """The key name written in signature lines."""
        ...

    @property
    def key_id(self) -> int:
        """The 32-bit key ID written in signatures."""
        ...

    def sign(self, message: bytes, /) -> bytes:
        """The signature (without key ID) over the note text ``message``."""
        ...


def split_vkey(vkey: str) -> tuple[str, int, int, bytes]:
    """Split a verifier key into (name, key ID, signature type, public key material).

    Checks the syntax and that the key ID is the recommended hash of the rest (§Verifier
    keys); the caller checks the type and key length.  Raises :class:`VerifierKeyInvalid`.
    """
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3:
        raise VerifierKeyInvalid("verifier key must be '<name>+<hex id>+<base64 key>'")
    name, hex_id, encoded = parts
    if not is_valid_key_name(name) or not _HEX_KEY_ID.fullmatch(hex_id):
        raise VerifierKeyInvalid("verifier key has a malformed name or key ID")
    try:
        material = b64_decode(encoded)
    except ValidationError as e:
        raise VerifierKeyInvalid("verifier key is not canonical base64") from e
    if len(material) < 2:
        raise VerifierKeyInvalid("verifier key has no key material")
    key_id = int(hex_id, 16)
    if compute_key_id(name, material[0], material[1:]) != key_id:
        raise VerifierKeyInvalid("verifier key ID does not match the key")
    return name, key_id, material[0], material[1:]


def format_vkey(name: str, signature_type: int, public_key: bytes) -> str:
    """Encode a verifier key ``<name>+<hex key ID>+base64(type || key)``.

    Raises :class:`VerifierKeyInvalid` for an invalid name.
    """
    if not is_valid_key_name(name):
        raise VerifierKeyInvalid("key name must be non-empty without spaces or '+'")
    key_id = compute_key_id(name, signature_type, public_key)
    return f"{name}+{key_id:08x}+{b64_encode(bytes([signature_type]) + public_key)}"


@dataclass(frozen=True)
class Ed25519Verifier:
    """A known Ed25519 note key (signature type 0x01); implements :class:`Verifier`.

    Subclasses for other Ed25519-based signature types set ``signature_type`` and
    ``type_name`` and override :meth:`verify`.  Raises :class:`VerifierKeyInvalid` for a bad
    name or a key that is not 32 bytes.
    """

    signature_type: ClassVar[int] = ALG_ED25519
    type_name: ClassVar[str] = "an Ed25519 note key"

    name: str
    public_key: bytes
    key_id: int = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise VerifierKeyInvalid("key name must be non-empty without spaces or '+'")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise VerifierKeyInvalid("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))
        key_id = compute_key_id(self.name, self.signature_type, self.public_key)
        object.__setattr__(self, "key_id", key_id)

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        """Parse a vkey of this class's signature type; raises :class:`VerifierKeyInvalid`
        (also for other types)."""
        name, _, alg, key = split_vkey(vkey)
        if alg != cls.signature_type:
            raise VerifierKeyInvalid(f"verifier key is not {cls.type_name}")
        return cls(name, key)

    @property
    def vkey(self) -> str:
        """This key as a vkey string."""
        return format_vkey(self.name, self.signature_type, self.public_key)

    def verify(self, message: bytes, signature: bytes, /) -> None:
        """Check an Ed25519 signature (RFC 8032) over ``message``.

        Raises :class:`NoteSignatureInvalid`.
        """
        try:
            self._key.verify(signature, message)
        except InvalidSignature as e:
            raise NoteSignatureInvalid(
                f"invalid signature for key {self.name}+{self.key_id:08x}",
                extra={"key_name": self.name, "key_id": f"{self.key_id:08x}"},
            ) from e


@dataclass(frozen=True)
class Ed25519Signer:
    """An Ed25519 note signer over any :class:`RawSigner`; implements :class:`Signer`.

    ``raw`` must sign with the private key of ``public_key``.  Raises
    :class:`SignerKeyInvalid` for a bad name or a public key that is not 32 bytes.
    """

    name: str
    public_key: bytes
    raw: RawSigner = field(repr=False, compare=False)
    key_id: int = field(init=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise SignerKeyInvalid("key name must be non-empty without spaces or '+'")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise SignerKeyInvalid("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "key_id", compute_key_id(self.name, ALG_ED25519, self.public_key))

    @classmethod
    def from_private_key(cls, name: str, key: Ed25519PrivateKey) -> Ed25519Signer:
        """A signer for a cryptography Ed25519 key; raises :class:`SignerKeyInvalid`."""
        return cls(name, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), key)

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        """Parse a Go-format signer key ``PRIVATE+KEY+<name>+<hex id>+base64(0x01 || seed)``.

        Raises :class:`SignerKeyInvalid`; the message never repeats the key.
        """
        parts = skey.split("+", 4) if isinstance(skey, str) else []
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise SignerKeyInvalid("signer key must be 'PRIVATE+KEY+<name>+<id>+<key>'")
        _, _, name, hex_id, encoded = parts
        if not _HEX_KEY_ID.fullmatch(hex_id):
            raise SignerKeyInvalid("signer key has a malformed key ID")
        try:
            material = b64_decode(encoded)
        except ValidationError as e:
            raise SignerKeyInvalid("signer key is not canonical base64") from e
        if len(material) != 33 or material[0] != ALG_ED25519:
            raise SignerKeyInvalid("signer key is not an Ed25519 seed")
        signer = cls.from_private_key(name, Ed25519PrivateKey.from_private_bytes(material[1:]))
        # The key ID hashes the public key, so it can only be checked after deriving it.
        if signer.key_id != int(hex_id, 16):
            raise SignerKeyInvalid("signer key ID does not match the key")
        return signer

    def sign(self, message: bytes, /) -> bytes:
        """An Ed25519 signature over ``message``; raises :class:`LogError` if not 64 bytes."""
        signature = self.raw.sign(message)
        if len(signature) != 64:
            raise LogError("Ed25519 signer returned a signature that is not 64 bytes")
        return signature

    def verifier(self) -> Ed25519Verifier:
        """The matching verifier."""
        return Ed25519Verifier(self.name, self.public_key)


def generate_key(name: str, seed: bytes | None = None) -> tuple[str, str]:
    """A new Ed25519 (skey, vkey) pair in Go ``note.GenerateKey`` format.

    ``seed`` (32 bytes) makes the pair reproducible; by default it is random.  Raises
    :class:`SignerKeyInvalid` for an invalid name or seed.
    """
    seed = secrets.token_bytes(32) if seed is None else seed
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise SignerKeyInvalid("an Ed25519 seed is 32 bytes")
    signer = Ed25519Signer.from_private_key(name, Ed25519PrivateKey.from_private_bytes(seed))
    private = b64_encode(bytes([ALG_ED25519]) + seed)
    return f"PRIVATE+KEY+{name}+{signer.key_id:08x}+{private}", signer.verifier().vkey


def sign_text(text: str, signer: Signer) -> Signature:
    """Sign note text; raises :class:`NoteInvalid` for bad text or a bad signer name."""
    check_text(text)
    return Signature(signer.name, signer.key_id, signer.sign(text.encode("utf-8")))


def sign_note(text: str, *signers: Signer) -> str:
    """A signed note with one signature per signer, in order.

    Raises :class:`NoteInvalid` for bad text or no signers.
    """
    return Note(text, tuple(sign_text(text, s) for s in signers)).format()


@dataclass(frozen=True)
class VerifiedNote:
    """An opened note: text, signatures by known keys (all valid), and ignored ones."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def verify_note(
    data: str | bytes, verifiers: Iterable[Verifier], *, max_signatures: int = MAX_SIGNATURES
) -> VerifiedNote:
    """Open a signed note with a set of known keys (§Signatures).

    1. Parse the note (raises :class:`NoteInvalid`).
    2. Index the known keys by (name, key ID); two different keys with the same pair raise
       :class:`VerifierKeyInvalid`.
    3. Ignore signatures whose (name, key ID) is unknown; verify every other one, and
       reject the whole note if one fails (raises :class:`NoteSignatureInvalid`).
    4. Require at least one verified signature (raises :class:`SignatureMissing`).
    """
    # 1.
    note = parse_note(data, max_signatures=max_signatures)
    # 2.
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if other is not v and other != v:
            raise VerifierKeyInvalid(f"two known keys are named {v.name}+{v.key_id:08x}")
    # 3.
    message = note.text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        verifier.verify(message, sig.signature)
        if sig not in verified:
            verified.append(sig)
    # 4.
    if not verified:
        raise SignatureMissing("note has no signature by a known key")
    return VerifiedNote(note.text, tuple(verified), tuple(unverified))
