"""Tables of the ZK statement registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["ZkProofUseRow", "ZkStatementRow"]


class ZkStatementRow(Base):
    """A registered ZK statement: its id and newest version, its setup provenance, the
    SHA-256 of its JSON document (RFC 8785) and the registry's signed token
    (``zk-statement+jwt``, which holds the document).  A new version replaces the row;
    every change is a ``zk.statement_registered`` event."""

    __tablename__ = "zk_statements"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    provenance: Mapped[str] = mapped_column(String(32))
    document_sha256: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ZkProofUseRow(Base):
    """A proof a verifier accepted: the SHA-256 of its canonical JSON, one-time (a proof
    presented again is refused ``zk_proof_replayed``), and when."""

    __tablename__ = "zk_proof_uses"

    proof_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
