"""Lenders: the registry of lender clients (OAuth 2.0 clients with ``private_key_jwt``, RFC
7523), their public keys, purposes and webhooks, and the client-assertion ids they used.

Lender console tokens (``console``) sign a lender's staff in to the web console.  Other
domains and the edges use these names; the tables (``lenders/models.py``) are this
package's own.  The OAuth token endpoint and the access tokens are the gateway's
(``gateway/oauth.py``, ``gateway/access_token.py``).
"""

from __future__ import annotations

from credit_commons.lenders.certificates import (
    THUMBPRINT_PATTERN,
    certificate_thumbprint,
    validate_thumbprint,
)
from credit_commons.lenders.console import (
    CONSOLE_TOKEN_PREFIX,
    ConsoleGrant,
    ConsoleTokenView,
    IssuedConsoleToken,
    console_grant,
    console_sign_in,
    issue_console_token,
    list_console_tokens,
    revoke_console_token,
)
from credit_commons.lenders.schemas import LenderClientView, LenderCreate, LenderUpdate
from credit_commons.lenders.service import (
    CLIENT_ID_PATTERN,
    ClientStatus,
    LenderCertificateChanged,
    LenderClient,
    LenderRegistered,
    LenderUpdated,
    client_names,
    client_status,
    consume_assertion_id,
    get_client,
    read_client,
    register_client,
    update_client,
    validate_jwks,
    validate_purposes,
    validate_webhook_url,
)

__all__ = [
    "CLIENT_ID_PATTERN",
    "CONSOLE_TOKEN_PREFIX",
    "THUMBPRINT_PATTERN",
    "ClientStatus",
    "ConsoleGrant",
    "ConsoleTokenView",
    "IssuedConsoleToken",
    "LenderCertificateChanged",
    "LenderClient",
    "LenderClientView",
    "LenderCreate",
    "LenderRegistered",
    "LenderUpdate",
    "LenderUpdated",
    "certificate_thumbprint",
    "client_names",
    "client_status",
    "console_grant",
    "console_sign_in",
    "consume_assertion_id",
    "get_client",
    "issue_console_token",
    "list_console_tokens",
    "read_client",
    "register_client",
    "revoke_console_token",
    "update_client",
    "validate_jwks",
    "validate_purposes",
    "validate_thumbprint",
    "validate_webhook_url",
]
