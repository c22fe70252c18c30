"""The lender registry's request and response models (the service contract of
``/v1/admin/lenders`` and of ``commons admin lender approve``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.core.encoding import JsonObject

__all__ = ["LenderClientView", "LenderCreate", "LenderUpdate"]


class LenderCreate(BaseModel):
    """A lender client to register."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    jwks: JsonObject
    allowed_purposes: Annotated[list[str], Field(min_length=1, max_length=32)]
    webhook_url: Annotated[str | None, Field(max_length=2048)] = None
    tls_client_certificate: Annotated[str | None, Field(max_length=16 * 1024)] = None
    """A PEM X.509 certificate the lender's tokens are to be bound to (RFC 8705 §3)."""
    tls_client_thumbprint: Annotated[str | None, Field(max_length=43)] = None
    """Or the certificate's ``x5t#S256`` (base64url SHA-256 of its DER encoding)."""


class LenderUpdate(BaseModel):
    """Changes to a lender client; ``webhook_url: null`` removes the webhook,
    ``tls_client_thumbprint: null`` the certificate binding."""

    model_config = ConfigDict(extra="forbid")
    jwks: JsonObject | None = None
    allowed_purposes: Annotated[list[str] | None, Field(min_length=1, max_length=32)] = None
    webhook_url: Annotated[str | None, Field(max_length=2048)] = None
    tls_client_certificate: Annotated[str | None, Field(max_length=16 * 1024)] = None
    tls_client_thumbprint: Annotated[str | None, Field(max_length=43)] = None
    active: bool | None = None


class LenderClientView(BaseModel):
    """A registered lender client: its keys, purposes and webhook."""

    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")

    client_id: str
    name: str
    jwks: JsonObject
    allowed_purposes: list[str]
    webhook_url: str | None
    tls_client_thumbprint: str | None
    """The ``x5t#S256`` of the certificate its tokens are bound to; ``null``: not bound."""
    active: bool
    created_at: str
    updated_at: str
