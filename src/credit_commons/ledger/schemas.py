"""The transparency log's results as the service returns them and the routes answer them
(``gateway/routes/log.py``).  The event documents and log entries inside are JSON
documents (``JsonObject``): their members are the event format's, kept exactly as logged."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from credit_commons.core.encoding import JsonObject

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "LogEntry",
    "LogKey",
    "PendingReceipt",
    "Receipt",
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogKey(_Out):
    """The log's origin line and its signed-note verifier key (C2SP signed-note)."""

    origin: str
    vkey: str


class InclusionProof(_Out):
    """RFC 6962 §2.1.1 inclusion proof of leaf ``index`` in the tree of ``size``."""

    index: int
    size: int
    leaf_hash: str = Field(description="base64 leaf hash")
    proof: list[str] = Field(description="base64 hashes, leaf to root")


class ConsistencyProof(_Out):
    """RFC 6962 §2.1.2 consistency proof between the trees of ``from`` and ``to``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: int = Field(alias="from")
    to: int
    proof: list[str]


class LogEntry(_Out):
    """One log entry (the event's public leaf), its index and leaf hash."""

    index: int
    entry: JsonObject
    leaf_hash: str


class Receipt(_Out):
    """A self-contained receipt: the entry, its index, its inclusion proof and the cosigned
    checkpoint (a signed note) it is proved against."""

    format: str = Field(description='"credit-commons-receipt/v1"')
    index: int
    entry: str = Field(description="the leaf entry, as logged (JSON text)")
    inclusion_proof: list[str]
    checkpoint: str
    event: JsonObject | None = Field(None, description="only for entitled parties")


class PendingReceipt(_Out):
    """The receipt of an event the log has signed but not yet checkpointed: the entry, the
    event and the log's signed entry (a signed note)."""

    format: str
    entry: str
    event: JsonObject
    signed_entry: str
