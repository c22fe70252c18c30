"""Tables of the borrower's sign-in by one-time code: the codes sent, each found by the
SHA-256 of the random challenge id in the browser's cookie and holding only a keyed hash of
its code.

Only an existing identity's request writes a row (an unknown one writes nothing), and at
most :data:`~credit_commons.web.borrower_code.CODES_PER_HOUR` an hour per identity, so no
outsider can fill the table; rows older than an hour are deleted as new codes are sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from credit_commons.core.db import Base

__all__ = ["SignInCodeRow"]


class SignInCodeRow(Base):
    """A one-time sign-in code sent to a borrower: whose (``subject``, the identity token),
    its keyed hash, how many wrong tries it had and when it expires."""

    __tablename__ = "web_signin_codes"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(40))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_web_signin_codes_subject_created", "subject", "created_at"),
        Index("ix_web_signin_codes_created_at", "created_at"),
    )
