"""HTTP response shapes of the gateway's own routes: the token endpoint and its metadata, and
a lender's own registration.  The lender registry's shapes are in ``lenders/schemas.py``,
the onboarding authorities' in ``identity/schemas.py``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["AccessTokenResponse", "LenderSelf", "TokenEndpointMetadata"]


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")


class AccessTokenResponse(_Out):
    """A lender access token (RFC 6749 §5.1), bound to the granted scopes."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class TokenEndpointMetadata(_Out):
    """The RFC 8414 §2 members that describe the lender token endpoint."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    scopes_supported: list[str]
    tls_client_certificate_bound_access_tokens: bool


class LenderSelf(_Out):
    """The calling lender's own registration, as its token presents it."""

    client_id: str
    name: str | None
    allowed_purposes: list[str]
    scope: str
