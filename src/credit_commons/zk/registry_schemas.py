"""What the ZK statement registry answers: a registered statement."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from credit_commons.core.encoding import JsonObject

__all__ = ["StatementView"]


class StatementView(BaseModel):
    """A registered statement: its id, version, setup provenance (``dev`` or
    ``ceremony_attested``), the SHA-256 of its document (RFC 8785), when it was registered,
    the document, and the registry's signed token (``zk-statement+jwt``) holding it."""

    model_config = ConfigDict(extra="forbid")
    id: str
    version: int
    setup_provenance: str
    document_sha256: str
    registered_at: str
    statement: JsonObject
    token: str
