"""Poseidon over the BLS12-381 scalar field: the instance ``poseidonperm_x5_255_3``.

The cryptography is @noble/curves' (``abstract/poseidon.js``), run in the zk layer's Node
worker (:mod:`credit_commons.zk.node`): ``grainGenConstants`` derives the round constants and
the MDS matrix with the Poseidon paper's Grain LFSR procedure, ``poseidon`` is the permutation.
The circuits' constants (``circuits/poseidon_constants.circom``) are generated from the same
call by ``node/gen-constants.mjs``.  The instance reproduces the Poseidon authors' reference
vector for this field (``tests/vectors/zk/``), and the circuits compute the same function
(tests/unit/zk).

Parameters (Poseidon paper, eprint 2019/458, Table 2 and the reference scripts): prime field
``r`` (255 bits), width ``t = 3`` (capacity 1, rate 2), S-box ``x^5`` (``alpha = 5``),
``R_F = 8`` full and ``R_P = 57`` partial rounds, for 128-bit security.

``hash2(a, b)`` is the two-to-one hash: state ``[0, a, b]``, digest lane 0 of the permuted
state (circomlib's convention, over this field).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from credit_commons.core.encoding import JsonObject
from credit_commons.zk.errors import FieldElementInvalid, ZkError
from credit_commons.zk.field import FIELD_MODULUS, decode_element, require_element
from credit_commons.zk.node import NodeWorker

__all__ = ["POSEIDON", "PoseidonInstance", "default_worker", "hash2", "permute"]


@dataclass(frozen=True, slots=True)
class PoseidonInstance:
    """The parameters that fix a Poseidon instance (the constants follow from them)."""

    name: str
    modulus: int
    t: int
    alpha: int
    full_rounds: int
    partial_rounds: int
    security_bits: int


POSEIDON = PoseidonInstance(
    name="poseidonperm_x5_255_3",
    modulus=FIELD_MODULUS,
    t=3,
    alpha=5,
    full_rounds=8,
    partial_rounds=57,
    security_bits=128,
)
"""The one instance the zk layer uses (commitments, Merkle trees, the circuits)."""

_default: NodeWorker | None = None
_default_lock = threading.Lock()


def default_worker() -> NodeWorker:
    """The process-wide Node worker, started on first use and stopped at interpreter exit."""
    global _default  # noqa: PLW0603 - one lazily started process per interpreter
    with _default_lock:
        if _default is None:
            _default = NodeWorker()
            atexit.register(_default.close)
        return _default


def _call(request: JsonObject, worker: NodeWorker | None) -> JsonObject:
    reply = (worker or default_worker()).call(request)
    if reply.get("ok") is not True:
        raise ZkError(f"the Poseidon worker refused the request: {reply.get('error')}")
    return reply


def permute(state: Sequence[int], *, worker: NodeWorker | None = None) -> tuple[int, int, int]:
    """The Poseidon permutation of a width-3 state of field elements.

    Raises :class:`FieldElementInvalid` for a wrong width or a value outside the field, and
    :class:`NodeUnavailable` when the Node tooling is missing.
    """
    if len(state) != POSEIDON.t:
        raise FieldElementInvalid("a Poseidon state holds exactly 3 elements")
    elements = [str(require_element(x, "state element")) for x in state]
    reply = _call({"op": "permute", "state": elements}, worker)
    out = reply["state"]
    assert isinstance(out, list)
    a, b, c = (decode_element(x) for x in out)
    return a, b, c


def hash2(a: int, b: int, *, worker: NodeWorker | None = None) -> int:
    """Poseidon(a, b) = lane 0 of ``permute([0, a, b])``.

    Raises :class:`FieldElementInvalid` for a value outside the field and
    :class:`NodeUnavailable` when the Node tooling is missing.
    """
    inputs = [str(require_element(a, "a")), str(require_element(b, "b"))]
    reply = _call({"op": "hash2", "inputs": inputs}, worker)
    return decode_element(reply["out"])
