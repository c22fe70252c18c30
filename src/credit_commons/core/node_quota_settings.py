"""A full node's ingest quotas (``COMMONS_NODE_QUOTAS``, docs/federation.md "Quotas").

One JSON object in the environment, keys left out keep their defaults:
``COMMONS_NODE_QUOTAS='{"stream_messages": 500, "backoff_max": 30}'``.  Token buckets per
stream and per followed peer, of messages and bytes a second, each holding ``burst``
seconds of its rate; a stream over quota backs off from ``backoff_base`` seconds, doubling
up to ``backoff_max`` (``node/quotas.py``).  Checked once at start-up like every setting.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["NodeQuotaSettings"]


class NodeQuotaSettings(BaseModel):
    """How much a followed peer may bring a full node (node/quotas.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_messages: float = Field(
        default=20_000.0, gt=0, description="messages a second one stream of a peer may bring"
    )
    stream_bytes: float = Field(
        default=32_000_000.0, gt=0, description="bytes a second one stream of a peer may bring"
    )
    peer_messages: float = Field(
        default=50_000.0, gt=0, description="messages a second a followed peer may bring"
    )
    peer_bytes: float = Field(
        default=64_000_000.0, gt=0, description="bytes a second a followed peer may bring"
    )
    burst: float = Field(
        default=2.0, gt=0, le=60, description="seconds of its rate a quota's bucket holds"
    )
    backoff_base: float = Field(
        default=0.25, gt=0, le=60, description="first back-off (s) of a stream over quota"
    )
    backoff_max: float = Field(
        default=10.0, gt=0, le=600, description="longest back-off (s) of a stream over quota"
    )

    @model_validator(mode="after")
    def _base_within_max(self) -> Self:
        if self.backoff_base > self.backoff_max:
            raise ValueError("backoff_base is at most backoff_max")
        return self
