"""A t-of-n BLS12-381 threshold signature on checkpoints, carried as a signed-note line.

Scheme: draft-irtf-cfrg-bls-signature-05, *minimal-pubkey-size* variant (§2.1), basic
scheme (§3.1).  Public keys are compressed G1 points (48 bytes) and signatures compressed
G2 points (96 bytes); ``hash_to_point`` is RFC 9380 ``BLS12381G2_XMD:SHA-256_SSWU_RO_``
with the project's own domain separation tag :data:`DST`.  Keys sit in G1 because they are
what every verifier stores and every vkey, key ID and member list carries, while a
checkpoint pays for one 96-byte signature.  The basic scheme suffices: verifiers only ever
see one group key, never an aggregate of keys chosen by others, so rogue keys do not apply.

A trusted dealer (:func:`deal`) Shamir-shares one secret over the scalar field: member
``i`` holds ``f(i)`` for a random polynomial ``f`` of degree ``t - 1`` with ``f(0)`` the
group secret.  A partial signature is ``f(i)·H(m)``; any ``t`` of them interpolate at 0 to
``f(0)·H(m)``, an ordinary BLS signature under the group key ``f(0)·P1``, so verifiers need
only the group key and learn nothing about ``t``, ``n`` or the members.

On the note (C2SP signed-note@v1.0.0 §Signatures) the group signature is one more line,
``— <name> base64(key ID || 96-byte signature)``, over the note text.  The signature type
is ``0xff`` ("types without an identifier byte assigned by this specification") followed by
:data:`SIGNATURE_TYPE_ID`, so the key ID is ``SHA-256(name || 0x0A || 0xff || ID || group
key)[:4]`` and the vkey is ``<name>+<hex ID>+base64(0xff || ID || group key)``.  Verifiers
that do not know that key ignore the line, as the spec requires of unknown keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from credit_commons.ledger import note as note_format
from credit_commons.ledger.committee_errors import (
    CommitteeKeyInvalid,
    CommitteeNotEnoughShares,
    CommitteeParametersInvalid,
    CommitteeShareInvalid,
    CommitteeSignatureInvalid,
    CommitteeSignatureMissing,
)
from credit_commons.ledger.errors import SignatureMissing, VerifierKeyInvalid

__all__ = [
    "DST",
    "MAX_MEMBERS",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "SIGNATURE_TYPE",
    "SIGNATURE_TYPE_ID",
    "CommitteeVerifier",
    "GroupPublicKey",
    "KeyShare",
    "MemberKey",
    "PartialSignature",
    "add_committee_signature",
    "combine",
    "deal",
    "verify_committee_signature",
    "verify_partial",
]

# RFC 9380 §3.1 asks for a tag naming the application, its version and the suite.  The tail
# is the draft's basic-scheme ciphersuite ID for minimal-pubkey-size (§4.2.1).
DST = b"CREDIT-COMMONS-CHECKPOINT-COMMITTEE-V1_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"
# signed-note §Signature types: 0xff, "RECOMMENDED that this byte be followed by a longer
# identifier that is unlikely to collide".
SIGNATURE_TYPE = 0xFF
SIGNATURE_TYPE_ID = b"credit-commons.dev/checkpoint-committee/bls12381-minpk/v1"
PUBLIC_KEY_SIZE = 48
SIGNATURE_SIZE = 96
# Member indexes are the x-coordinates 1..n and travel as one byte.
MAX_MEMBERS = 255

# The prime order r of G1, G2 and the scalar field (draft-irtf-cfrg-pairing-friendly-curves).
_R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
_P1 = G1Point()  # the library's default point is the standard generator of G1
_DEAL_ATTEMPTS = 8


def _scalar(value: int) -> Scalar:
    # from_be_bytes refuses values >= r, so nothing is silently reduced.
    return Scalar.from_be_bytes(value.to_bytes(32, "big"))


def _hash_to_point(message: bytes) -> G2Point:
    # draft §2.6 step 1 / RFC 9380 §3 hash_to_curve (checked against RFC 9380 J.10.1).
    return G2Point.hash_to_curve(message, DST)


def _pairing_ok(public: G1Point, hashed: G2Point, signature: G2Point) -> bool:
    # draft §2.7 steps 7-9: e(PK, Q) == e(P1, R), checked as e(PK, Q)·e(-P1, R) == 1.
    return GT.pairing_check([public, -_P1], [hashed, signature])


def _decode_public(data: bytes, what: str) -> G1Point:
    # draft §2.5 KeyValidate: a valid point, not the identity, in the prime-order subgroup.
    if not isinstance(data, bytes) or len(data) != PUBLIC_KEY_SIZE:
        raise CommitteeKeyInvalid(f"{what} must be a {PUBLIC_KEY_SIZE}-byte compressed G1 point")
    try:
        point = G1Point.from_compressed_bytes(data)
    except ValueError as e:
        raise CommitteeKeyInvalid(f"{what} is not a G1 point") from e
    # The library accepts non-canonical encodings of the identity, so a key must re-encode
    # to exactly its own bytes: one key, one encoding, one key ID.
    if point.to_compressed_bytes() != data or point == G1Point.identity():
        raise CommitteeKeyInvalid(f"{what} is not a canonical non-identity G1 point")
    if not point.is_in_subgroup():
        raise CommitteeKeyInvalid(f"{what} is not in the G1 subgroup")
    return point


def _decode_signature(
    data: bytes, error: type[CommitteeSignatureInvalid | CommitteeShareInvalid]
) -> G2Point:
    # draft §2.7 steps 1-3: signature_to_point and signature_subgroup_check.
    if not isinstance(data, bytes) or len(data) != SIGNATURE_SIZE:
        raise error(f"a signature is a {SIGNATURE_SIZE}-byte compressed G2 point")
    try:
        point = G2Point.from_compressed_bytes(data)
    except ValueError as e:
        raise error("signature is not a G2 point") from e
    if point.to_compressed_bytes() != data or point == G2Point.identity():
        raise error("signature is not a canonical non-identity G2 point")
    if not point.is_in_subgroup():
        raise error("signature is not in the G2 subgroup")
    return point


def _check_index(index: int, error: type[CommitteeKeyInvalid | CommitteeShareInvalid]) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= MAX_MEMBERS:
        raise error(f"member index must be an integer in [1, {MAX_MEMBERS}]")


@dataclass(frozen=True)
class GroupPublicKey:
    """The committee's public key ``f(0)·P1``, 48 compressed bytes.

    Raises :class:`CommitteeKeyInvalid` unless the bytes pass KeyValidate (draft §2.5).
    """

    public_key: bytes
    _point: G1Point = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_point", _decode_public(self.public_key, "group public key"))

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check a 96-byte group signature over ``message`` (draft §2.7 CoreVerify).

        Raises :class:`CommitteeSignatureInvalid`.
        """
        point = _decode_signature(signature, CommitteeSignatureInvalid)
        if not _pairing_ok(self._point, _hash_to_point(message), point):
            raise CommitteeSignatureInvalid("committee signature does not verify")


@dataclass(frozen=True)
class MemberKey:
    """A member's public verification key ``f(index)·P1``.

    Raises :class:`CommitteeKeyInvalid` for an index outside ``[1, 255]`` or a bad key.
    """

    index: int
    public_key: bytes
    _point: G1Point = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_index(self.index, CommitteeKeyInvalid)
        object.__setattr__(self, "_point", _decode_public(self.public_key, "member key"))


@dataclass(frozen=True)
class PartialSignature:
    """Member ``index``'s signature share ``f(index)·H(m)``, 96 compressed bytes.

    Raises :class:`CommitteeShareInvalid` for a bad index or signature encoding.
    """

    index: int
    signature: bytes
    _point: G2Point = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_index(self.index, CommitteeShareInvalid)
        object.__setattr__(self, "_point", _decode_signature(self.signature, CommitteeShareInvalid))

    def to_bytes(self) -> bytes:
        """97 bytes: the index as one byte, then the compressed signature."""
        return bytes([self.index]) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> PartialSignature:
        """Decode :meth:`to_bytes` output; raises :class:`CommitteeShareInvalid`."""
        if not isinstance(data, bytes) or len(data) != 1 + SIGNATURE_SIZE:
            raise CommitteeShareInvalid(f"a partial signature is {1 + SIGNATURE_SIZE} bytes")
        return cls(data[0], data[1:])


@dataclass(frozen=True)
class KeyShare:
    """Member ``index``'s secret share ``f(index)`` and its public verification key.

    Raises :class:`CommitteeKeyInvalid` for a bad index or a secret outside ``[1, r)``.
    """

    index: int
    secret: int = field(repr=False)
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        _check_index(self.index, CommitteeKeyInvalid)
        if isinstance(self.secret, bool) or not isinstance(self.secret, int):
            raise CommitteeKeyInvalid("a key share secret is an integer")
        if not 1 <= self.secret < _R:
            raise CommitteeKeyInvalid("a key share secret must lie in [1, r)")
        public = (_P1 * _scalar(self.secret)).to_compressed_bytes()
        object.__setattr__(self, "public_key", public)

    @property
    def member(self) -> MemberKey:
        """The public half, for the coordinator that verifies and combines partials."""
        return MemberKey(self.index, self.public_key)

    def sign(self, message: bytes) -> PartialSignature:
        """This member's partial signature over ``message`` (draft §2.6 CoreSign)."""
        point = _hash_to_point(message) * _scalar(self.secret)
        return PartialSignature(self.index, point.to_compressed_bytes())

    def to_bytes(self) -> bytes:
        """33 secret bytes: the index as one byte, then the big-endian share."""
        return bytes([self.index]) + self.secret.to_bytes(32, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyShare:
        """Decode :meth:`to_bytes` output; raises :class:`CommitteeKeyInvalid`."""
        if not isinstance(data, bytes) or len(data) != 33:
            raise CommitteeKeyInvalid("a key share is 33 bytes")
        return cls(data[0], int.from_bytes(data[1:], "big"))


def _check_shape(t: int, n: int) -> None:
    for value in (t, n):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CommitteeParametersInvalid("threshold and committee size must be integers")
    if not 1 <= t <= n <= MAX_MEMBERS:
        raise CommitteeParametersInvalid(f"need 1 <= t <= n <= {MAX_MEMBERS}, got t={t}, n={n}")


def deal(
    t: int, n: int, *, rng: Callable[[int], bytes] = secrets.token_bytes
) -> tuple[GroupPublicKey, list[KeyShare]]:
    """A trusted dealer's t-of-n key: the group key and shares ``f(1)..f(n)``.

    ``rng(k)`` returns ``k`` random bytes (``secrets.token_bytes`` by default); coefficients
    are 64 bytes reduced mod ``r``, so their bias is below 2^-250.  The dealer learns the
    group secret and must discard it and the shares once they are handed out.  Raises
    :class:`CommitteeParametersInvalid` for an impossible ``(t, n)`` or an RNG that returns
    the wrong length or keeps producing a zero secret or share.
    """
    _check_shape(t, n)
    for _ in range(_DEAL_ATTEMPTS):
        coefficients: list[int] = []
        for _ in range(t):
            draw = rng(64)
            if not isinstance(draw, bytes) or len(draw) != 64:
                raise CommitteeParametersInvalid("rng must return the number of bytes asked for")
            coefficients.append(int.from_bytes(draw, "big") % _R)
        shares = [_evaluate(coefficients, x) for x in range(1, n + 1)]
        # A zero secret or share would make an identity key; redraw (probability ~n/2^255).
        if coefficients[0] != 0 and all(shares):
            group = GroupPublicKey((_P1 * _scalar(coefficients[0])).to_compressed_bytes())
            return group, [KeyShare(x, share) for x, share in enumerate(shares, start=1)]
    raise CommitteeParametersInvalid("rng keeps producing a zero secret or share")


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    # Horner's rule over the scalar field.
    value = 0
    for coefficient in reversed(coefficients):
        value = (value * x + coefficient) % _R
    return value


def _lagrange_at_zero(indexes: Sequence[int]) -> list[int]:
    # λ_i = Π_{j≠i} j / (j - i) mod r; the indexes are distinct and nonzero mod r.
    weights = []
    for i in indexes:
        numerator, denominator = 1, 1
        for j in indexes:
            if j != i:
                numerator = numerator * j % _R
                denominator = denominator * (j - i) % _R
        weights.append(numerator * pow(denominator, -1, _R) % _R)
    return weights


def verify_partial(partial: PartialSignature, message: bytes, member: MemberKey) -> None:
    """Check ``partial`` over ``message`` under ``member``'s key (draft §2.7 CoreVerify).

    Raises :class:`CommitteeShareInvalid` if the indexes differ or the signature fails.
    """
    _verify_partial(partial, _hash_to_point(message), member)


def _verify_partial(partial: PartialSignature, hashed: G2Point, member: MemberKey) -> None:
    if partial.index != member.index:
        raise CommitteeShareInvalid(f"partial {partial.index} is not member {member.index}'s")
    if not _pairing_ok(member._point, hashed, partial._point):
        raise CommitteeShareInvalid(
            f"partial signature by member {partial.index} does not verify",
            extra={"member_index": partial.index},
        )


def combine(
    partials: Iterable[PartialSignature],
    t: int,
    *,
    message: bytes,
    group: GroupPublicKey,
    members: Sequence[MemberKey],
) -> bytes:
    """Combine at least ``t`` partial signatures over ``message`` into the group signature.

    ``members`` lists the member keys in index order ``1..n``.  A coordinator that wants to
    tolerate bad members checks each partial with :func:`verify_partial` as it arrives and
    passes on only the good ones.

    1. Check ``t`` and ``members`` (raises :class:`CommitteeParametersInvalid`).
    2. Check each partial names a member, once (raises :class:`CommitteeShareInvalid`).
    3. Require ``t`` partials (raises :class:`CommitteeNotEnoughShares`).
    4. Verify every partial under its member's key (raises :class:`CommitteeShareInvalid`).
    5. Interpolate at 0: ``σ = Σ λ_i·σ_i`` over all the partials.
    6. Verify ``σ`` under ``group`` (raises :class:`CommitteeSignatureInvalid` when the
       member keys do not belong to this group key).
    """
    # 1.
    members = tuple(members)
    _check_shape(t, len(members))
    if [m.index for m in members] != list(range(1, len(members) + 1)):
        raise CommitteeParametersInvalid("members must be listed in index order 1..n")
    # 2.
    chosen = list(partials)
    seen: set[int] = set()
    for partial in chosen:
        if not 1 <= partial.index <= len(members):
            raise CommitteeShareInvalid(f"partial index {partial.index} names no member")
        if partial.index in seen:
            raise CommitteeShareInvalid(f"two partial signatures for member {partial.index}")
        seen.add(partial.index)
    # 3.
    if len(chosen) < t:
        raise CommitteeNotEnoughShares(f"{len(chosen)} partial signatures, {t} needed")
    # 4.
    hashed = _hash_to_point(message)
    for partial in chosen:
        _verify_partial(partial, hashed, members[partial.index - 1])
    # 5.
    weights = _lagrange_at_zero([p.index for p in chosen])
    total = G2Point.identity()
    for partial, weight in zip(chosen, weights, strict=True):
        total = total + partial._point * _scalar(weight)
    signature = total.to_compressed_bytes()
    # 6.
    group.verify(message, signature)
    return signature


@dataclass(frozen=True)
class CommitteeVerifier:
    """A committee key on signed notes; implements :class:`note.Verifier`.

    Raises :class:`CommitteeKeyInvalid` for a key name that signed notes do not allow.
    """

    name: str
    group: GroupPublicKey
    key_id: int = field(init=False)

    def __post_init__(self) -> None:
        if not note_format.is_valid_key_name(self.name):
            raise CommitteeKeyInvalid("key name must be non-empty without spaces or '+'")
        if not isinstance(self.group, GroupPublicKey):
            raise CommitteeKeyInvalid("a committee verifier needs a GroupPublicKey")
        key_id = note_format.compute_key_id(self.name, SIGNATURE_TYPE, self._material)
        object.__setattr__(self, "key_id", key_id)

    @property
    def _material(self) -> bytes:
        # The vkey and key ID hash "signature type || public key"; for 0xff the type runs on
        # with the identifier (signed-note §Signature types).
        return SIGNATURE_TYPE_ID + self.group.public_key

    @classmethod
    def from_vkey(cls, vkey: str) -> CommitteeVerifier:
        """Parse ``<name>+<hex ID>+base64(0xff || ID || key)``.

        Raises :class:`CommitteeKeyInvalid`.
        """
        try:
            name, _, alg, material = note_format.split_vkey(vkey)
        except VerifierKeyInvalid as e:
            raise CommitteeKeyInvalid(e.detail) from e
        if alg != SIGNATURE_TYPE or not material.startswith(SIGNATURE_TYPE_ID):
            raise CommitteeKeyInvalid("verifier key is not a checkpoint committee key")
        return cls(name, GroupPublicKey(material[len(SIGNATURE_TYPE_ID) :]))

    @property
    def vkey(self) -> str:
        """This key as a vkey string (signed-note §Verifier keys)."""
        return note_format.format_vkey(self.name, SIGNATURE_TYPE, self._material)

    def verify(self, message: bytes, signature: bytes, /) -> None:
        """Check a group signature over the note text; raises :class:`CommitteeSignatureInvalid`."""
        try:
            self.group.verify(message, signature)
        except CommitteeSignatureInvalid as e:
            raise CommitteeSignatureInvalid(
                f"invalid committee signature for key {self.name}+{self.key_id:08x}",
                extra={"key_name": self.name, "key_id": f"{self.key_id:08x}"},
            ) from e


def add_committee_signature(
    note_text: str, name: str, signature: bytes, *, group: GroupPublicKey
) -> str:
    """``note_text`` (a signed note) with the committee's signature line added.

    1. Parse the signed note (raises :class:`~credit_commons.ledger.errors.NoteInvalid`).
    2. Build the committee key ``name``/``group`` (raises :class:`CommitteeKeyInvalid`).
    3. Verify ``signature`` over the note text, so a bad line is never published (raises
       :class:`CommitteeSignatureInvalid`).
    4. Append the line, replacing any by the same key name and ID.
    """
    parsed = note_format.parse_note(note_text)
    verifier = CommitteeVerifier(name, group)
    verifier.verify(parsed.text.encode("utf-8"), signature)
    line = note_format.Signature(name, verifier.key_id, signature)
    return parsed.with_signatures(line).format()


def verify_committee_signature(
    note_text: str | bytes, verifier_key: str | CommitteeVerifier
) -> note_format.VerifiedNote:
    """Check a note's committee signature with signed-note rules (§Signatures).

    Only the committee line is checked; pass the log's key too to :func:`note.verify_note`
    to check both at once.  Raises :class:`CommitteeKeyInvalid` for a bad vkey,
    :class:`~credit_commons.ledger.errors.NoteInvalid` for a malformed note,
    :class:`CommitteeSignatureInvalid` if a line by the key fails, and
    :class:`CommitteeSignatureMissing` if there is none.
    """
    verifier = (
        verifier_key
        if isinstance(verifier_key, CommitteeVerifier)
        else CommitteeVerifier.from_vkey(verifier_key)
    )
    try:
        return note_format.verify_note(note_text, [verifier])
    except SignatureMissing as e:
        raise CommitteeSignatureMissing(
            f"note has no signature by committee key {verifier.name}+{verifier.key_id:08x}"
        ) from e
