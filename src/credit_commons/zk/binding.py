"""The binding of a proof to one request: a field element from (nonce, audience, request_hash).

``binding = int(SHA-256(JCS({"audience": audience, "nonce": nonce, "request_hash":
request_hash})), big-endian) mod r`` — RFC 8785 canonical JSON of the three strings, SHA-256,
read as a big-endian integer and reduced modulo the BLS12-381 scalar field order ``r``.  Every
circuit takes it as a public input; the verifier recomputes it from its own request, so a
proof made for another nonce, audience or request does not verify.  (The reduction loses
about 1.8 bits of the 256: collisions stay at ~2^127 work.)
"""

from __future__ import annotations

from credit_commons.core.encoding import canonical_json, sha256
from credit_commons.zk.errors import FieldElementInvalid
from credit_commons.zk.field import FIELD_MODULUS

__all__ = ["request_binding"]


def request_binding(*, nonce: str, audience: str, request_hash: str) -> int:
    """The binding field element of a request; raises :class:`FieldElementInvalid` when a part
    is not a non-empty string."""
    parts = {"audience": audience, "nonce": nonce, "request_hash": request_hash}
    for name, part in parts.items():
        if not isinstance(part, str) or not part:
            raise FieldElementInvalid(f"the binding's {name} is not a non-empty string")
    return int.from_bytes(sha256(canonical_json(parts)), "big") % FIELD_MODULUS
