"""Where step 3 of the pipeline takes another issuer's key from: the Issuer Signature
Mechanisms this verifier permits (SD-JWT VC draft, "Issuer Signature Mechanisms"), each
only for an issuer its trust list or a pinned bundle allows.

* JWT VC Issuer Metadata (an ``https`` issuer), its DID document (``did:web``) or the
  identifier itself (``did:key``), through :mod:`~credit_commons.verifier.foreign`, for an
  issuer listed by its identifier;
* X.509 certificates: the end-entity certificate of the ``x5c`` chain in the issuer JWT's
  protected header, once the chain verified up to an X.509 anchor entry and the
  certificate names ``iss`` (:meth:`~credit_commons.verifier.trust_bundle.TrustBundle.lookup`).
  The chain decides alone: an issuer listed by metadata or DID that sends ``x5c`` is trusted
  for it only through an anchor, and this platform's credentials carry no chain.

The keys of an issuer trusted by neither are never fetched (no request on its behalf).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from credit_commons.issuer import is_own_issuer
from credit_commons.keys import PublicKey
from credit_commons.runtime import Runtime
from credit_commons.verifier import foreign, trust_registry
from credit_commons.verifier import trust as trust_list
from credit_commons.verifier.sd_jwt_vc import UntrustedIssuer
from credit_commons.verifier.trust_bundle import IssuerNotTrusted, TrustEntry

__all__ = ["ForeignKey", "certified_key", "foreign_key", "trusted_kind"]


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """Another issuer's key and how it is trusted: ``kind`` (``https``, ``did:web``,
    ``did:key``, or ``x509`` with the ``anchor`` entry that certified ``key``)."""

    kind: trust_list.EntryKind
    key: PublicKey
    anchor: TrustEntry | None = None


def foreign_key(
    session: Session, rt: Runtime, header: Mapping[str, Any], payload: Mapping[str, Any]
) -> ForeignKey:
    """The key that must verify another issuer's credential (its unverified ``header`` and
    ``payload`` only choose where to look).

    Raises :class:`UntrustedIssuer` for an issuer not trusted (``IssuerNotTrusted`` for a
    chain refused: ``chain_invalid``, ``chain_expired``, ``chain_name_mismatch``,
    ``type_not_allowed``, ``not_listed``), and ``UnknownForeignKey``,
    ``IssuerMetadataInvalid`` or the fetcher's errors.
    """
    iss = payload.get("iss")
    if "x5c" in header:
        return _certified(session, rt, iss, header["x5c"], payload)
    vct = payload.get("vct")
    kind = trusted_kind(session, rt, iss, vct if isinstance(vct, str) else "")
    if kind is None or not isinstance(iss, str):
        raise UntrustedIssuer("the credential's issuer is not trusted here")
    return ForeignKey(kind, foreign.foreign_issuers(rt).key(iss, kind, header))


def certified_key(
    session: Session, rt: Runtime, iss: str, vct: str, x5c: Sequence[str]
) -> PublicKey:
    """The end-entity key of an ``x5c`` chain (leaf first) that verifies now up to an X.509
    anchor of the trust list (or of a pinned bundle) for ``iss`` and ``vct``: the key an
    X.509-certified issuer's status list must be signed by
    (:meth:`~credit_commons.verifier.foreign.ForeignIssuers.status`).  The chain is checked
    afresh on every call, so an anchor removed or a certificate expired since the
    credential was first verified is refused.  Raises :class:`UntrustedIssuer` (its
    ``IssuerNotTrusted`` reasons)."""
    return _certified(session, rt, iss, list(x5c), {"vct": vct}).key


def _certified(
    session: Session, rt: Runtime, iss: object, x5c: object, payload: Mapping[str, Any]
) -> ForeignKey:
    if not isinstance(iss, str) or is_own_issuer(session, rt, iss):
        raise UntrustedIssuer("an x5c chain for an issuer no anchor can certify")
    if not isinstance(x5c, list):
        raise IssuerNotTrusted("chain_invalid", "x5c is an array of certificates")
    vct = payload.get("vct")
    trusted = trust_registry.lookup(session, rt, iss, vct if isinstance(vct, str) else "", x5c=x5c)
    if trusted.key is None:  # a lookup with x5c answers only through an anchor
        raise IssuerNotTrusted("chain_invalid", "the chain yielded no key")
    return ForeignKey("x509", trusted.key, trusted.entry)


def trusted_kind(
    session: Session, rt: Runtime, iss: object, type_: str
) -> trust_list.IssuerKind | None:
    """How ``iss`` is trusted by its identifier (``https``, ``did:web``, ``did:key``): in
    the platform's trust list, else in a pinned bundle of another platform for ``type_``
    (the credential's type, not yet verified: step 6 asks again once it is); ``None`` when
    it is not.  Raises nothing of its own."""
    if not isinstance(iss, str):
        return None
    kind = trust_list.trusted_kind(session, iss)
    if kind is not None:
        return kind
    try:
        entry = trust_registry.trusted(session, rt, iss, type_)
    except IssuerNotTrusted:
        return None
    # Without x5c the lookup answers with the issuer's own entry, never an X.509 one.
    return entry.kind if entry.kind in ("https", "did:web", "did:key") else None
