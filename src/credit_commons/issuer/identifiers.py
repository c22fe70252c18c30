"""Every issuer identifier this instance has used: each public URL it issued under.

A credential's ``iss`` and its status-list URL are the public URL at issuance: issuer
metadata (SD-JWT VC draft §5, ``/.well-known/jwt-vc-issuer``; OID4VCI 1.0 §12.2) is found from
that URL, so new credentials must name where the issuer is reachable now.  Unlike the log's
origin (``ledger/identity.py``), the identifier therefore follows a new public URL.  But a
change must not orphan what was issued before it: every public URL a process starts with is
recorded as a platform fact, and this platform's own checks (presentation and credential
verification, consent-gated retrieval) accept credentials naming any recorded identifier —
still signed by this issuer's own keys, still checked against its own status lists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.attached import Attached
from credit_commons.core.facts import PlatformFactRow, record_fact
from credit_commons.runtime import Runtime

__all__ = [
    "FACT_PREFIX",
    "is_own_issuer",
    "own_status_list_id",
    "record_issuer_identifier",
]

FACT_PREFIX = "issuer.id."
_STATUS_PATH = "/status-lists/"


def _key(identifier: str) -> str:
    # Facts are keyed by a digest: a URL can be longer than a fact's key.
    return FACT_PREFIX + hashlib.sha256(identifier.encode()).hexdigest()[:32]


def record_issuer_identifier(session: Session, rt: Runtime) -> None:
    """Record this runtime's public URL among the instance's issuer identifiers (once)."""
    identifier = rt.settings.public_url
    if identifier not in _known(rt):
        record_fact(session, _key(identifier), identifier, rt.clock.now())
        _remember(rt, [identifier])


# The issuer identifiers each runtime has seen recorded.
_KNOWN = Attached[Runtime, set[str]](lambda _rt: set())


def _known(rt: Runtime) -> set[str]:
    return _KNOWN(rt)


def _remember(rt: Runtime, identifiers: Iterable[str]) -> None:
    _known(rt).update(identifiers)


def _has(session: Session, rt: Runtime, value: str, form: Callable[[str], str]) -> bool:
    # The current public URL always, then what this process has seen; a value not seen yet
    # is looked up once more (another process may have recorded it since).
    def found() -> bool:
        return value in {form(i) for i in _known(rt) | {rt.settings.public_url}}

    if found():
        return True
    rows = session.scalars(
        select(PlatformFactRow.value).where(PlatformFactRow.key.startswith(FACT_PREFIX))
    ).all()
    _remember(rt, rows)
    return found()


def is_own_issuer(session: Session, rt: Runtime, iss: object) -> bool:
    """Whether ``iss`` is one of this instance's issuer identifiers, current or recorded."""
    return isinstance(iss, str) and _has(session, rt, iss, lambda i: i)


def own_status_list_id(session: Session, rt: Runtime, uri: object) -> str | None:
    """The list id of ``uri`` when it is one of this instance's status-list URLs (under any
    of its issuer identifiers, as ``issuer.status.status_uri`` makes them), else None."""
    if not isinstance(uri, str) or _STATUS_PATH not in uri:
        return None
    base, _, list_id = uri.rpartition(_STATUS_PATH)
    if not list_id or "/" in list_id:
        return None
    if not _has(session, rt, base, lambda i: i.rstrip("/")):
        return None
    return list_id
