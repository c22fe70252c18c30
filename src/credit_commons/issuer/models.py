"""Tables of the issuer domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "CredentialOfferRow",
    "CredentialRow",
    "CredentialTypeRow",
    "IssuerNonceRow",
    "StatusListRow",
]


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


class StatusListRow(Base):
    """One status list: the packed statuses and which indexes are taken.

    ``kind`` is ``token`` (IETF Token Status List, 2 bits, LSB-first) or ``bitstring`` (W3C
    Bitstring Status List, 1 bit, MSB-first).  ``used`` is a 1-bit-per-index bitmap
    (LSB-first) of allocated indexes; ``version`` grows on every change.
    """

    __tablename__ = "status_lists"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    bits: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    used: Mapped[bytes] = mapped_column(LargeBinary)
    allocated: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CredentialRow(Base):
    """The registry entry of an issued credential: its hash and metadata only (seed 000).

    The credential itself is sealed in the vault (``sealed``), for consent-gated retrieval.
    """

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type_name: Mapped[str] = mapped_column(String(64))
    subject_token: Mapped[str | None] = mapped_column(String(40), index=True)
    format: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status_list_id: Mapped[str] = mapped_column(String(40))
    status_index: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    # The verifier's privacy tombstone finds a credential by its status entry (issuer.erasure).
    __table_args__ = (Index("ix_credentials_status", "status_list_id", "status_index"),)


class CredentialOfferRow(Base):
    """An OID4VCI credential offer (pre-authorized code flow).

    Codes, transaction codes and access tokens are stored as SHA-256 only; the claims are
    sealed in the vault until the credential is issued.
    """

    __tablename__ = "credential_offers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tx_code_hash: Mapped[str | None] = mapped_column(String(64))
    type_name: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(32), server_default="dc+sd-jwt")
    subject_token: Mapped[str] = mapped_column(String(40))
    sealed_claims: Mapped[bytes] = mapped_column(LargeBinary)
    # The offer served by reference (it carries the pre-authorized code): sealed, and
    # served by any replica until the offer expires.
    sealed_offer: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    access_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IssuerNonceRow(Base):
    """A ``c_nonce`` (hash only) that one proof of possession may use, once."""

    __tablename__ = "issuer_nonces"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
