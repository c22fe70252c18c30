"""HTTP response shapes of the gateway's own routes: the token endpoint, a lender's own
registration and onboarding authorities (documentation of what the routes send; the routes
return the services' values unchanged, see ``gateway/openapi.py``).  The lender registry's
shapes are in ``lenders/schemas.py``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from credit_commons.identity.schemas import IdentifierView

__all__ = [
    "AccessTokenResponse",
    "AuthorityCreated",
    "AuthorityView",
    "BindingView",
    "DeskToken",
    "LenderSelf",
]


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")


class AccessTokenResponse(_Out):
    """A lender access token (RFC 6749 §5.1), bound to the granted scopes."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class LenderSelf(_Out):
    """The calling lender's own registration, as its token presents it."""

    client_id: str
    name: str | None
    allowed_purposes: list[str]
    scope: str


class AuthorityView(_Out):
    """An onboarding authority."""

    authority_id: str
    kind: str
    name: str
    lender_client_id: str | None
    active: bool
    created_at: str
    updated_at: str


class AuthorityCreated(AuthorityView):
    """A designated authority; an issuer desk's bearer token is shown once."""

    token: str | None = None
    token_expires_at: str | None = None


class DeskToken(_Out):
    """An issuer desk's bearer token, shown once."""

    authority_id: str
    token: str
    token_expires_at: str


class BindingView(IdentifierView):
    """An identifier bound to an identity, and the event that recorded it (``null`` when
    it was bound already)."""

    identity_token: str
    event_id: str | None
