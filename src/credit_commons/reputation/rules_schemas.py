"""What the rule-set registry answers: a registered rule set, with what a client pins."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from credit_commons.core.encoding import JsonObject

__all__ = ["RuleSetView"]


class RuleSetView(BaseModel):
    """A registered rule set: its id, version and hash (SHA-256 hex of the RFC 8785 bytes of
    its JSON: what every score names), when it was published and from when it is in effect
    (UTC, ISO 8601), whether it was registered as a development rule set (time lock not
    enforced), the document, and the registry's signed token (``reputation-rules+jwt``)
    holding it, which a client verifies under the platform's ``reputation-rules`` key."""

    model_config = ConfigDict(extra="forbid")
    id: str
    version: int
    hash: str
    published_at: str
    valid_from: str
    dev: bool
    rule_set: JsonObject
    token: str
