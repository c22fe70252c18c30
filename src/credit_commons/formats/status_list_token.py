"""The registered claims of a Status List Token, in either form (draft-ietf-oauth-status-list
§5.1 JWT, §5.2 CWT).

Both forms define the same claims "as generally defined in" RFC 7519 and RFC 8392, and both
say that Relying Parties "MUST reject" a token "not valid in all other respects" per those
RFCs (§5.1 and §5.2, rule 3).  So :func:`check_claims` applies, to the values already taken
out of either claims set:

1. ``sub`` is the URI the list was fetched for (§8.3);
2. ``iat`` is present (REQUIRED in both forms) and a NumericDate;
3. ``exp``, when present, is a NumericDate after ``now`` (RFC 7519 §4.1.4);
4. ``nbf``, when present, is a NumericDate not after ``now`` (RFC 7519 §4.1.5, RFC 8392
   §3.1.5: the token "MUST NOT be accepted for processing" before it), with
   :data:`NBF_LEEWAY` for the issuer's clock;
5. ``ttl``, when present, is positive: a JSON number in the JWT form, an unsigned integer
   (major type 0) in the CWT form.

A NumericDate is a number of seconds, integer or not (RFC 7519 §2).  In a CWT it is a bare
CBOR number: "the leading tag 1 (epoch-based date/time) MUST be omitted" (RFC 8392 §2), so a
tagged ``iat`` is refused, whatever other claims may carry.  Pure: ``now`` is a parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from credit_commons.core.errors import IntegrityError

__all__ = ["NBF_LEEWAY", "StatusListTokenInvalid", "TokenTimes", "check_claims"]

#: Seconds by which ``nbf`` may be ahead of the verifier's clock (RFC 7519 §4.1.5:
#: "Implementers MAY provide for some small leeway ... to account for clock skew").
NBF_LEEWAY: Final = 60.0


class StatusListTokenInvalid(IntegrityError):
    """A Status List Token whose claims are missing, malformed, for another URI, expired or
    not yet valid."""

    code = "credential.status_list_invalid"
    title = "Status list not acceptable"


@dataclass(frozen=True, slots=True)
class TokenTimes:
    """The checked time claims of a Status List Token (seconds; ``ttl`` as given)."""

    iat: float
    exp: float | None
    ttl: float | None


def _numeric_date(value: object, name: str) -> float | None:
    if value is None:
        return None
    # bool is an int in Python; an integer too large for a float stays an exact int, which
    # compares with a float without overflow.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatusListTokenInvalid(f"{name} must be a NumericDate (a number of seconds)")
    if isinstance(value, float) and not math.isfinite(value):
        raise StatusListTokenInvalid(f"{name} must be a finite number")
    return value


def check_claims(
    *,
    sub: object,
    iat: object,
    exp: object,
    nbf: object,
    ttl: object,
    uri: str,
    now: float,
    ttl_integer: bool,
    leeway: float = NBF_LEEWAY,
) -> TokenTimes:
    """Steps 1-5 of the module over the claims' values (``None`` for an absent claim);
    ``ttl_integer`` for the CWT form.  Raises :class:`StatusListTokenInvalid`."""
    if sub != uri:  # 1
        raise StatusListTokenInvalid("the status list was issued for another URI")
    issued = _numeric_date(iat, "iat")  # 2
    if issued is None:
        raise StatusListTokenInvalid("the status list has no iat (it is REQUIRED)")
    expires = _numeric_date(exp, "exp")  # 3
    if expires is not None and expires <= now:
        raise StatusListTokenInvalid("the status list has expired")
    not_before = _numeric_date(nbf, "nbf")  # 4
    if not_before is not None and not_before > now + leeway:
        raise StatusListTokenInvalid("the status list is not valid yet (nbf)")
    return TokenTimes(issued, expires, _ttl(ttl, integer=ttl_integer))  # 5


def _ttl(value: object, *, integer: bool) -> float | None:
    if value is None:
        return None
    number = not isinstance(value, bool) and isinstance(value, int if integer else int | float)
    if not number or not (isinstance(value, int | float) and 0 < value < math.inf):
        raise StatusListTokenInvalid(
            "ttl must be a positive " + ("unsigned integer" if integer else "number")
        )
    return value
