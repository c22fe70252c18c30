"""The ``private_key_jwt`` client assertion (RFC 7523 §2.2 and §3), as the platform's token
endpoint checks it (``gateway/oauth.py``, docs/lenders.md):

1. header ``typ: JWT``, ``kid`` naming the registered key, ``alg`` from the key (``EdDSA``
   or ``ES256``), and no embedded key;
2. ``iss`` and ``sub`` are the client id (§3 items 1 and 2.B);
3. ``aud`` is the token endpoint (§3 item 3);
4. ``iat`` now, ``exp`` a short while later — the platform refuses more than 300 s (item 4);
5. ``jti`` fresh for every assertion: the platform refuses a second use (item 7).

Pure: the time and the ``jti`` may be passed in.
"""

from __future__ import annotations

import secrets

from credit_commons.formats.jws import sign_compact
from credit_commons.keys import Signer

__all__ = ["ASSERTION_LIFETIME", "MAX_ASSERTION_LIFETIME", "client_assertion"]

ASSERTION_LIFETIME = 60
"""Seconds an assertion lives by default: long enough for one request."""
MAX_ASSERTION_LIFETIME = 300
"""The platform's limit on ``exp`` - ``iat`` (``gateway/oauth.py``)."""


def client_assertion(
    signer: Signer,
    *,
    kid: str,
    client_id: str,
    token_endpoint: str,
    now: int,
    lifetime: int = ASSERTION_LIFETIME,
    jti: str | None = None,
) -> str:
    """A compact JWS client assertion signed by ``signer``.

    Raises :class:`ValueError` for a ``lifetime`` outside 1..300 seconds.
    """
    if not 1 <= lifetime <= MAX_ASSERTION_LIFETIME:
        raise ValueError(f"an assertion lives 1 to {MAX_ASSERTION_LIFETIME} seconds")
    return sign_compact(
        {"typ": "JWT", "kid": kid},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti or secrets.token_urlsafe(24),
        },
        signer,
    )
