"""Tables of the issuer domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["CredentialTypeRow"]


class CredentialTypeRow(Base):
    """A credential type in the catalogue (see ``issuer/catalogue.py``)."""

    __tablename__ = "credential_types"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    vct: Mapped[str] = mapped_column(String(255), unique=True)
    schema: Mapped[str] = mapped_column(Text)  # JSON
    disclosable: Mapped[str] = mapped_column(Text)  # JSON list of paths
    default_validity_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
