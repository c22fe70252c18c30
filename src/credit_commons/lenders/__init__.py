"""Lenders: the registry of lender clients (OAuth 2.0 clients with ``private_key_jwt``, RFC
7523), their public keys, purposes and webhooks, and the client-assertion ids they used.

Other domains and the edges use these names; the tables (``lenders/models.py``) are this
package's own.  The OAuth token endpoint and the access tokens are the gateway's
(``gateway/oauth.py``, ``gateway/access_token.py``).
"""

from __future__ import annotations

from credit_commons.lenders.schemas import LenderClientView, LenderCreate, LenderUpdate
from credit_commons.lenders.service import (
    CLIENT_ID_PATTERN,
    LenderClient,
    LenderRegistered,
    LenderUpdated,
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
    "LenderClient",
    "LenderClientView",
    "LenderCreate",
    "LenderRegistered",
    "LenderUpdate",
    "LenderUpdated",
    "client_status",
    "consume_assertion_id",
    "get_client",
    "read_client",
    "register_client",
    "update_client",
    "validate_jwks",
    "validate_purposes",
    "validate_webhook_url",
]
