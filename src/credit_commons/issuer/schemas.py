"""Pydantic input of the issuance API and the batch CLI (one shape for both)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.issuer.credentials import IssueRequest

__all__ = ["MAX_BATCH", "BatchIssue", "IssueItem"]

MAX_BATCH = 1_000
"""The most credentials one ``POST /v1/credentials/batch`` (and one CLI transaction) issues."""


class IssueItem(BaseModel):
    """What to issue, to whom, bound to which holder key."""

    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]{2,63}$")]
    subject: Annotated[str, Field(pattern=r"^idt_[a-zA-Z0-9]{12,32}$")]
    claims: dict[str, Any]
    holder_jwk: dict[str, str]
    format: Literal["dc+sd-jwt", "jwt_vc_json"] = "dc+sd-jwt"

    def request(self) -> IssueRequest:
        """The service's request for this item."""
        return IssueRequest(self.type, self.subject, self.claims, self.holder_jwk, self.format)


class BatchIssue(BaseModel):
    """Up to :data:`MAX_BATCH` credentials issued together, all or none."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[IssueItem], Field(min_length=1, max_length=MAX_BATCH)]
