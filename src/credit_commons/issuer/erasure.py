"""The issuer's part of an erasure: forget the subject's identity token (issue 13 item 3).

* Credential registry entries keep their id, type, hash, status-list position and dates —
  holders still present the credentials and verifiers still check their status, which no
  erasure changes — but lose ``subject_token``: nothing in the registry names or can be
  matched to the erased identity any more.  The sealed copy of each credential was sealed
  under the subject's shredded key and is noise.
* Credential offers (pending or spent) are deleted: their claims were sealed under the
  shredded key, and a pending offer must never be served for an erased subject.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from credit_commons.issuer.models import CredentialOfferRow, CredentialRow

__all__ = ["IssuerForgotten", "forget_subject", "subject_erased"]


@dataclass(frozen=True)
class IssuerForgotten:
    """What the issuer's part of an erasure changed."""

    credentials_unlinked: int
    offers_deleted: int


def forget_subject(session: Session, token: str) -> IssuerForgotten:
    """Remove identity ``token`` from the issuer's tables in the caller's transaction;
    returns how many credentials were unlinked and offers deleted."""
    unlinked = session.execute(
        update(CredentialRow).where(CredentialRow.subject_token == token).values(subject_token=None)
    )
    offers = session.execute(
        delete(CredentialOfferRow).where(CredentialOfferRow.subject_token == token)
    )
    return IssuerForgotten(
        credentials_unlinked=int(getattr(unlinked, "rowcount", 0) or 0),
        offers_deleted=int(getattr(offers, "rowcount", 0) or 0),
    )


def subject_erased(session: Session, list_id: str, index: int) -> bool:
    """Whether the credential at entry ``index`` of this issuer's status list ``list_id``
    was issued to a subject who has since been erased (its registry entry lost the identity
    token, which only :func:`forget_subject` removes): the verifier's privacy tombstone
    (seed 002 §5 step 4).  ``False`` for an entry no credential holds.  Raises nothing
    but database errors."""
    found = session.execute(
        select(CredentialRow.subject_token).where(
            CredentialRow.status_list_id == list_id, CredentialRow.status_index == index
        )
    ).first()
    return found is not None and found[0] is None
