"""The claims the registry's statements read, committed at issuance and opened by the holder.

At issuance (``issuer/credentials.py``), for each registered statement that reads a claim of
the credential's type, the issuer adds — when the claim is present — the commitment
``C = Poseidon(value, salt)`` (``zk/commitment.py``) under ``zk_commitments`` (a plain claim,
always disclosed and signed by the issuer like every other claim) and the salt under
``zk_openings`` (one selectively disclosable claim per commitment: it travels to the holder in
the credential and is never disclosed by the wallet)::

    "zk_commitments": {"score": "4168…"}            (decimal field elements)
    "zk_openings": {"score": "2913…"}               (it and each salt an SD-JWT Disclosure)

:func:`claim_value` turns the claim into the committed integer (:data:`~credit_commons.zk.
statement.ENCODINGS`); :func:`opening` gives the holder back the value and salt of a
commitment from its credential's full claims.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, Final

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ValidationError
from credit_commons.zk.commitment import VALUE_BITS, commit, new_salt
from credit_commons.zk.statement import Statement

__all__ = [
    "COMMITMENTS_CLAIM",
    "OPENINGS_CLAIM",
    "ClaimNotProvable",
    "claim_value",
    "commit_claims",
    "day_number",
    "opening",
    "opening_paths",
    "string_id",
]

COMMITMENTS_CLAIM: Final = "zk_commitments"
OPENINGS_CLAIM: Final = "zk_openings"


class ClaimNotProvable(ValidationError):
    """A claim a statement reads whose value its encoding cannot commit to."""

    code = "zk.claim_not_provable"
    title = "Claim cannot be committed"


def string_id(text: str) -> int:
    """A string identifier (an SHG id) as a committed value: the first 64 bits of the
    SHA-256 of its UTF-8 bytes, big-endian (the circuits' values are below 2^64, and a group
    tree's leaves are non-zero: 0 becomes 1).  Finding another identifier with the same value
    costs about 2^64 hashes."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") or 1


def day_number(day: date) -> int:
    """The day number of ``day``: its proleptic Gregorian ordinal (``date.toordinal()``,
    0001-01-01 is day 1, so a birth date before 1970 is positive) — a ``date_days`` claim's
    encoding, and the verifier's day of an ``age_at_least`` statement (docs/zk.md)."""
    return day.toordinal()


def _pointer(claims: Mapping[str, Any], pointer: str) -> Any:
    node: Any = claims
    for segment in pointer.strip("/").split("/"):
        if not isinstance(node, Mapping) or segment not in node:
            return None
        node = node[segment]
    return node


def claim_value(statement: Statement, claims: Mapping[str, Any]) -> int | None:
    """The integer committed for ``statement``'s claim in ``claims`` (``None`` when the claim
    is absent).  Raises :class:`ClaimNotProvable` (``extra["field"]``: the claim's pointer)
    for a value its encoding cannot take."""
    binding = statement.credential
    value = _pointer(claims, binding.claim)
    if value is None:
        return None
    where = f"{binding.claim} ({binding.encoding})"
    if binding.encoding == "integer":
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**VALUE_BITS:
            return value
    elif binding.encoding == "enum_index":
        if binding.enum is not None and value in binding.enum:
            return binding.enum.index(value)
    elif binding.encoding == "date_days":
        try:
            days = day_number(date.fromisoformat(value)) if isinstance(value, str) else -1
        except ValueError:
            days = -1
        if 0 <= days < 2**VALUE_BITS:
            return days
    elif isinstance(value, str) and 1 <= len(value) <= 128:  # string_id
        return string_id(value)
    raise ClaimNotProvable(f"the claim {where} cannot be committed", extra={"field": binding.claim})


def commit_claims(
    statements: Sequence[Statement],
    claims: Mapping[str, Any],
    *,
    salt: Callable[[], int] = new_salt,
) -> JsonObject:
    """``claims`` with the commitments of every statement's claim they hold, and their salts
    (one commitment per commitment name, shared by statements reading the same claim).

    Raises :class:`ValidationError` when ``claims`` already carry commitments or openings
    (the platform makes them) and :class:`ClaimNotProvable`.
    """
    if COMMITMENTS_CLAIM in claims or OPENINGS_CLAIM in claims:
        raise ValidationError(
            f"{COMMITMENTS_CLAIM} and {OPENINGS_CLAIM} are the platform's to make"
        )
    commitments: dict[str, str] = {}
    openings: dict[str, str] = {}
    for statement in statements:
        name = statement.credential.commitment
        value = claim_value(statement, claims)
        if value is None or name in commitments:
            continue
        chosen = salt()
        commitments[name] = str(commit(value, chosen))
        openings[name] = str(chosen)
    if not commitments:
        return dict(claims)
    return {**claims, COMMITMENTS_CLAIM: commitments, OPENINGS_CLAIM: openings}


def opening_paths(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The selectively disclosable paths of the openings in ``claims``: the ``zk_openings``
    claim itself (so a presentation that discloses none shows no trace of it) and each
    salt in it."""
    openings = claims.get(OPENINGS_CLAIM)
    if not isinstance(openings, Mapping):
        return ()
    return (f"/{OPENINGS_CLAIM}", *(f"/{OPENINGS_CLAIM}/{name}" for name in sorted(openings)))


def opening(statement: Statement, claims: Mapping[str, Any]) -> tuple[int, int, int]:
    """The holder's opening of ``statement``'s commitment from its credential's full claims
    (every Disclosure): the committed value, the salt and the commitment.

    Raises :class:`ClaimNotProvable` when the credential does not carry that commitment,
    its salt or its claim, or when they do not open it.
    """
    name = statement.credential.commitment
    commitments, openings = claims.get(COMMITMENTS_CLAIM), claims.get(OPENINGS_CLAIM)
    committed = commitments.get(name) if isinstance(commitments, Mapping) else None
    salt = openings.get(name) if isinstance(openings, Mapping) else None
    value = claim_value(statement, claims)
    if not isinstance(committed, str) or not isinstance(salt, str) or value is None:
        raise ClaimNotProvable(f"the credential carries no opening of its {name} commitment")
    if not committed.isdigit() or not salt.isdigit() or commit(value, int(salt)) != int(committed):
        raise ClaimNotProvable(f"the credential's {name} opening does not open its commitment")
    return value, int(salt), int(committed)
