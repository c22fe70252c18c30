"""An identity's identifiers as the platform keeps them: keyed pseudonyms, never values.

:func:`identifier_pseudonym` turns an identifier in its canonical spelling into ``p1:…``
(HMAC under the KMS-held pepper); :func:`identifier_view` is what the platform says about
one identifier (its kind and binding, no value, no pseudonym).  Tombstones are keyed hashes
in a domain of their own, written at erasure: one for the identity token and one for each
*bound* identifier, so an authority cannot bind those again and nothing is issued to the
token (:func:`identifier_tombstoned`, :func:`is_tombstoned`), without the platform
keeping the pseudonyms themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from credit_commons.core.clock import utc
from credit_commons.core.encoding import b64url_encode
from credit_commons.identity.identifiers import IdentifierKind
from credit_commons.identity.models import BOUND, IdentifierLinkRow, TombstoneRow
from credit_commons.identity.schemas import IdentifierView
from credit_commons.runtime import Runtime

__all__ = [
    "identifier_pseudonym",
    "identifier_tombstoned",
    "identifier_view",
    "is_tombstoned",
    "links_of",
    "tombstone_keys",
]


def identifier_pseudonym(rt: Runtime, kind: IdentifierKind, canonical: str) -> str:
    """The keyed pseudonym (``p1:…``) of an identifier in its canonical spelling."""
    mac = rt.vault.kms.hmac(f"{kind.value}\x00{canonical}".encode(), label="identifier")
    return "p1:" + b64url_encode(mac)


def _tombstone_key(rt: Runtime, what: str) -> str:
    return rt.vault.kms.hmac(what.encode(), label="tombstone").hex()


def identifier_tombstoned(session: Session, rt: Runtime, pseudonym: str) -> bool:
    """Whether the identifier behind ``pseudonym`` was bound to a subject since erased."""
    return session.get(TombstoneRow, _tombstone_key(rt, f"link\x00{pseudonym}")) is not None


def is_tombstoned(session: Session, rt: Runtime, token: str) -> bool:
    """Whether identity ``token`` belongs to an erased subject (issuance must refuse it)."""
    return session.get(TombstoneRow, _tombstone_key(rt, f"identity\x00{token}")) is not None


def tombstone_keys(rt: Runtime, token: str, links: Iterable[IdentifierLinkRow]) -> set[str]:
    """The tombstones an erasure of ``token`` writes: the token's, and keyed hashes of its
    *bound* pseudonyms.  An unverified identifier leaves none: otherwise a squatter could
    register an owner's number and erase themselves to block the owner for good."""
    keys = {_tombstone_key(rt, f"identity\x00{token}")}
    keys.update(
        _tombstone_key(rt, f"link\x00{link.pseudonym}") for link in links if link.status == BOUND
    )
    return keys


def identifier_view(link: IdentifierLinkRow) -> IdentifierView:
    """What the platform says about one of an identity's identifiers (no value, no
    pseudonym): its kind, ``unverified`` or ``bound``, and for a bound one the attesting
    authority, the keyed digest of its evidence reference and when it was bound."""
    return IdentifierView(
        kind=link.kind,
        status=link.status,
        authority_id=link.authority_id,
        evidence_digest=link.evidence_digest,
        bound_at=utc(link.bound_at).isoformat() if link.bound_at is not None else None,
    )


def links_of(session: Session, token: str) -> list[IdentifierLinkRow]:
    """Identity ``token``'s identifier links, by kind then pseudonym."""
    return list(
        session.scalars(
            select(IdentifierLinkRow)
            .where(IdentifierLinkRow.identity_token == token)
            .order_by(IdentifierLinkRow.kind, IdentifierLinkRow.pseudonym)
        )
    )
