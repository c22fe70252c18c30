"""Groth16 verification over BLS12-381 for snarkjs proofs and verification keys.

The cryptography is py-arkworks-bls12381's (arkworks): point decoding with on-curve and
subgroup checks, the multi-scalar multiplication and the pairing check.  This module parses
snarkjs's JSON strictly and writes the Groth16 equation (Groth 2016, §3.2; snarkjs's
``groth16_verify``) over those calls:

    e(A, B) = e(alpha, beta) * e(vk_x, gamma) * e(C, delta),   vk_x = IC_0 + sum_i x_i * IC_i

checked as one product of four pairings equal to 1.  Verification raises; a return means the
proof verified.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from credit_commons.core.encoding import JsonObject
from credit_commons.zk.errors import ProofInvalid, ProofMalformed
from credit_commons.zk.field import FIELD_MODULUS

__all__ = ["BASE_FIELD_MODULUS", "Groth16Proof", "VerificationKey", "verify"]

BASE_FIELD_MODULUS = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
    16,
)
"""``q``, the modulus of BLS12-381's base field (point coordinates)."""

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,115})")


def _coordinate(value: object) -> bytes:
    if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
        raise ProofMalformed("a coordinate is not a canonical decimal string")
    number = int(value)
    if number >= BASE_FIELD_MODULUS:
        raise ProofMalformed("a coordinate is not below the base field modulus")
    return number.to_bytes(48, "big")


def _g1(value: object) -> G1Point:
    if not isinstance(value, list) or len(value) != 3 or value[2] != "1":
        raise ProofMalformed('a G1 point is not [x, y, "1"]')
    try:
        point = G1Point.from_xy_bytes_be(_coordinate(value[0]) + _coordinate(value[1]))
    except ValueError as error:  # not on the curve or not in the subgroup
        raise ProofMalformed("a G1 point is not in the prime-order subgroup") from error
    # arkworks reads (0, 0) as the point at infinity; no proof or key element is that point.
    if point == G1Point.identity():
        raise ProofMalformed("a G1 point is the point at infinity")
    return point


def _g2(value: object) -> G2Point:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or value[2] != ["1", "0"]
        or not all(isinstance(c, list) and len(c) == 2 for c in value[:2])
    ):
        raise ProofMalformed('a G2 point is not [[x0, x1], [y0, y1], ["1", "0"]]')
    # snarkjs lists Fp2 elements as [c0, c1]; arkworks reads x.c0 || x.c1 || y.c0 || y.c1.
    data = b"".join(_coordinate(c) for pair in value[:2] for c in pair)
    try:
        point = G2Point.from_xy_bytes_be(data)
    except ValueError as error:
        raise ProofMalformed("a G2 point is not in the prime-order subgroup") from error
    if point == G2Point.identity():
        raise ProofMalformed("a G2 point is the point at infinity")
    return point


def _header(document: JsonObject, what: str) -> None:
    if not isinstance(document, dict):
        raise ProofMalformed(f"the {what} is not a JSON object")
    if document.get("protocol") != "groth16" or document.get("curve") != "bls12381":
        raise ProofMalformed(f"the {what} is not a Groth16 BLS12-381 {what}")


@dataclass(frozen=True, slots=True)
class Groth16Proof:
    """A parsed proof ``(A, B, C)``; :meth:`parse` raises :class:`ProofMalformed`."""

    a: G1Point
    b: G2Point
    c: G1Point

    @classmethod
    def parse(cls, document: JsonObject) -> Groth16Proof:
        """Parse snarkjs's proof JSON (``pi_a``, ``pi_b``, ``pi_c``, protocol and curve)."""
        _header(document, "proof")
        if set(document) - {"pi_a", "pi_b", "pi_c", "protocol", "curve"}:
            raise ProofMalformed("the proof has unexpected members")
        return cls(_g1(document.get("pi_a")), _g2(document.get("pi_b")), _g1(document.get("pi_c")))


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A parsed verification key; :meth:`parse` raises :class:`ProofMalformed`."""

    alpha: G1Point
    beta: G2Point
    gamma: G2Point
    delta: G2Point
    ic: tuple[G1Point, ...]

    @property
    def n_public(self) -> int:
        """The number of public inputs the key expects."""
        return len(self.ic) - 1

    @classmethod
    def parse(cls, document: JsonObject) -> VerificationKey:
        """Parse snarkjs's ``verification_key.json``."""
        _header(document, "verification key")
        ic = document.get("IC")
        n_public = document.get("nPublic")
        if not isinstance(ic, list) or not isinstance(n_public, int) or len(ic) != n_public + 1:
            raise ProofMalformed("the verification key's IC does not match nPublic")
        return cls(
            alpha=_g1(document.get("vk_alpha_1")),
            beta=_g2(document.get("vk_beta_2")),
            gamma=_g2(document.get("vk_gamma_2")),
            delta=_g2(document.get("vk_delta_2")),
            ic=tuple(_g1(point) for point in ic),
        )


def _public_scalars(public_signals: Sequence[object], n_public: int) -> list[Scalar]:
    if len(public_signals) != n_public:
        raise ProofMalformed(f"expected {n_public} public inputs, got {len(public_signals)}")
    scalars = []
    for signal in public_signals:
        if not isinstance(signal, str) or _DECIMAL.fullmatch(signal) is None:
            raise ProofMalformed("a public input is not a canonical decimal string")
        value = int(signal)
        if value >= FIELD_MODULUS:
            raise ProofMalformed("a public input is not below the field modulus")
        scalars.append(Scalar.from_be_bytes(value.to_bytes(32, "big")))
    return scalars


def verify(key: VerificationKey, proof: Groth16Proof, public_signals: Sequence[object]) -> None:
    """Check a Groth16 proof against a key and its public inputs (decimal strings).

    1. Each public input is a canonical decimal string below the field modulus ``r``, and
       there are ``nPublic`` of them.
    2. ``vk_x = IC_0 + sum_i x_i * IC_i`` (arkworks multi-scalar multiplication).
    3. ``e(-A, B) * e(alpha, beta) * e(vk_x, gamma) * e(C, delta) == 1`` (arkworks).

    Raises :class:`ProofMalformed` for bad public inputs and :class:`ProofInvalid` when the
    equation does not hold.
    """
    scalars = _public_scalars(public_signals, key.n_public)
    vk_x = key.ic[0]
    if scalars:
        vk_x = vk_x + G1Point.multiexp_unchecked(list(key.ic[1:]), scalars)
    holds = GT.pairing_check(
        [-proof.a, key.alpha, vk_x, proof.c],
        [proof.b, key.beta, key.gamma, key.delta],
    )
    if not holds:
        raise ProofInvalid("the proof does not verify for these public inputs")
