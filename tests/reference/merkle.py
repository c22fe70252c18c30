"""A naive RFC 6962 Merkle tree, written straight from the recursive definitions.

RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and §2.1.4.1 (PROOF, SUBPROOF), transcribed with no
cleverness, so the fast implementation in ``credit_commons.ledger.rfc6962`` can be checked
against it.  It uses only ``hashlib``.  Entries are *leaf hashes*: the MTH of a one-entry
list is that entry, exactly as MTH({d0}) = HASH(0x00 || d0) in the RFC once the leaf has
been hashed.  The only concession to speed is a memo of MTH by range, which does not change
any result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(entry: bytes) -> bytes:
    """HASH(0x00 || d) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def _split(n: int) -> int:
    # "k is the largest power of two smaller than n (i.e., k < n <= 2k)".
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class ReferenceTree:
    """The Merkle tree over a fixed list of leaf hashes; ranges are [lo, hi)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = tuple(leaf_hashes)
        self._mth: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) (RFC 9162 §2.1.1)."""
        key = (lo, hi)
        if key not in self._mth:
            n = hi - lo
            if n == 0:
                # "The hash of an empty list is the hash of an empty string".
                value = hashlib.sha256(b"").digest()
            elif n == 1:
                value = self.leaves[lo]
            else:
                k = _split(n)
                left, right = self.mth(lo, lo + k), self.mth(lo + k, hi)
                value = hashlib.sha256(b"\x01" + left + right).digest()
            self._mth[key] = value
        return self._mth[key]

    def root(self, n: int) -> bytes:
        """MTH(D[0:n])."""
        return self.mth(0, n)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            # "The path for the single leaf in a tree with a one-element input list
            # D[1] = {d(0)} is empty".
            return []
        k = _split(n)
        if m < k:
            # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k
            return [*self._path(m, lo, lo + k), self.mth(lo + k, hi)]
        # PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k
        return [*self._path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def path(self, m: int, n: int) -> list[bytes]:
        """PATH(m, D[0:n]): the inclusion proof of leaf m (RFC 9162 §2.1.3.1)."""
        assert 0 <= m < n <= len(self.leaves)
        return self._path(m, 0, n)

    def _subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            # SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
            return [] if b else [self.mth(lo, hi)]
        k = _split(n)
        if m <= k:
            # SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) for m <= k
            return [*self._subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        # SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]) for m > k
        return [*self._subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true) for 0 < m <= n (RFC 9162 §2.1.4.1)."""
        assert 0 < m <= n <= len(self.leaves)
        return self._subproof(m, 0, n, True)


def path_length(m: int, n: int) -> int:
    """The length of PATH(m, D[n]); it depends only on m and n."""
    return len(ReferenceTree([bytes([i % 256]) * 32 for i in range(n)]).path(m, n))


def proof_length(m: int, n: int) -> int:
    """The length of PROOF(m, D[n]); it depends only on m and n."""
    return len(ReferenceTree([bytes([i % 256]) * 32 for i in range(n)]).proof(m, n))
