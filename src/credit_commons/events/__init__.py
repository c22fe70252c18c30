"""The event spine: typed events written in the caller's transaction (DESIGN.md, "The event
spine").  Every domain records its state changes here; the transparency log
(:mod:`credit_commons.ledger`) sequences them into Merkle leaves.

The spine sits just above ``core`` and ``formats`` so that every domain, keys included, can
record events without importing the log.  Its public names are the spine's own
(``spine.__all__``, passed on by star import so the two lists cannot drift apart) and the
tables, :class:`EventRow` and :class:`LogOutboxRow`.
"""

from __future__ import annotations

from credit_commons.events import spine as _spine
from credit_commons.events.models import EventRow, LogOutboxRow
from credit_commons.events.spine import *  # noqa: F403

__all__ = [*_spine.__all__, "EventRow", "LogOutboxRow"]  # noqa: PLE0604 - the spine's own list
