"""OAuth 2.0 error responses (RFC 6749 §5.2): the platform's one OAuth error type.

Every endpoint that answers in OAuth's own error format — the lenders' token endpoint
(RFC 6749 §4.4 with RFC 7523 client assertions), the OID4VCI token, nonce and credential
endpoints (OID4VCI 1.0 §6.3, §8.3.1, which reuse the §5.2 shape) — raises an
:class:`OAuthError`, and is answered ``{"error", "error_description"}`` with its status.
Subclasses add only what their endpoint records (the token endpoint's audit fields) or their
stable ``code``.
"""

from __future__ import annotations

import re
from typing import Final

from credit_commons.core.errors import CommonsError

__all__ = ["OAuthError"]

# RFC 6749 §5.2: error = 1*NQSCHAR (printable ASCII without '"' and '\'), and the same
# characters (and space) for error_description.
_ERROR_CODE: Final = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]+")


class OAuthError(CommonsError):
    """A refusal answered as an RFC 6749 §5.2 error response: ``error`` (a registered code
    such as ``invalid_request``, ``invalid_client``, ``invalid_grant``) and a human
    ``description``, with HTTP ``status`` (400, or 401 for client authentication).

    Building one raises ``ValueError`` when ``error`` is not a §5.2 error code.
    """

    code = "oauth.error"
    title = "OAuth error"
    status = 400

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        if not _ERROR_CODE.fullmatch(error) or " " in error:
            raise ValueError(f"{error!r} is not an RFC 6749 §5.2 error code")
        super().__init__(description, extra={"error": error})
        self.error = error
        self.status = status  # type: ignore[misc]

    def body(self) -> dict[str, str]:
        """The JSON error body (RFC 6749 §5.2)."""
        return {"error": self.error, "error_description": self.detail}
