"""The verifier's contract: what its services return and the verification routes answer
(a verified credential or presentation, a trust-list entry)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_commons.core.encoding import JsonObject

__all__ = ["SdJwtVerified", "TrustedIssuerView", "VcJwtVerified"]


class _Out(BaseModel):
    # A response shape: exactly these members (the schema says additionalProperties: false).
    model_config = ConfigDict(extra="forbid")


class SdJwtVerified(_Out):
    """A verified SD-JWT VC (or presentation): its type and the disclosed claims."""

    valid: Literal[True]
    vct: str
    claims: JsonObject


class VcJwtVerified(_Out):
    """A verified jwt_vc_json credential: its types, holder and subject claims."""

    valid: Literal[True]
    type: list[str]
    holder: str | None
    claims: JsonObject


class TrustedIssuerView(_Out):
    """A trusted issuer entry."""

    id: str
    issuer: str
    kind: str
    added_at: str
