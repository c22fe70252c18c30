"""The table of registered rule sets and its queries (``reputation/rules_service.py`` is the
only writer): one row per (id, version), never replaced, so a client that pinned a version
can always fetch it again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, LargeBinary, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from credit_commons.core.db import Base

__all__ = [
    "RuleSetRow",
    "active_row",
    "latest_version",
    "list_rows",
    "rows_of",
    "version_row",
]


class RuleSetRow(Base):
    """A registered rule set: its id and version (the primary key: unique together), the
    RFC 8785 bytes of its JSON and their SHA-256 (hex), the registry's signed token
    (``reputation-rules+jwt``), when it was published, from when it is in effect, and
    whether it was registered as a development rule set (its time lock not enforced)."""

    __tablename__ = "reputation_rule_sets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dev: Mapped[bool] = mapped_column(Boolean)


def latest_version(session: Session, rule_set_id: str) -> int | None:
    """The highest version registered under ``rule_set_id`` (``None``: none)."""
    found: int | None = session.scalar(
        select(func.max(RuleSetRow.version)).where(RuleSetRow.id == rule_set_id)
    )
    return found


def version_row(session: Session, rule_set_id: str, version: int) -> RuleSetRow | None:
    """The row of one version of ``rule_set_id``."""
    return session.get(RuleSetRow, (rule_set_id, version))


def active_row(session: Session, rule_set_id: str, at: datetime) -> RuleSetRow | None:
    """The highest version of ``rule_set_id`` whose ``valid_from`` ≤ ``at``."""
    return session.scalars(
        select(RuleSetRow)
        .where(RuleSetRow.id == rule_set_id, RuleSetRow.valid_from <= at)
        .order_by(RuleSetRow.version.desc())
        .limit(1)
    ).first()


def rows_of(session: Session, rule_set_id: str) -> Sequence[RuleSetRow]:
    """Every version of ``rule_set_id``, oldest first."""
    return session.scalars(
        select(RuleSetRow).where(RuleSetRow.id == rule_set_id).order_by(RuleSetRow.version)
    ).all()


def list_rows(session: Session) -> Sequence[RuleSetRow]:
    """Every registered rule set, by id then version."""
    return session.scalars(select(RuleSetRow).order_by(RuleSetRow.id, RuleSetRow.version)).all()
