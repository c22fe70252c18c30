"""What a lender verifies, with the project's own verification code (not a second copy):

* a retrieved credential — ``verifier.verify_sd_jwt`` (RFC 9901 §7.1: the issuer signature,
  every Disclosure's digest in ``_sd``, the times), with no Key Binding expected; then
  ``verifier/sd_jwt_vc.py`` (``typ``, ``vct``, the status reference); the issuer's key from
  its JWT VC Issuer Metadata (or DID) and its status list, signed by the same issuer, both
  through ``verifier/foreign.py`` and ``verifier/status_fetch.py``.  The issuer must be the
  platform or one the lender trusts — with the platform's trust bundle
  (``client/trust_bundle.py``), judged by the bundle's ``TrustBundle.lookup`` as the
  platform's step 6 judges it: the types the issuer may issue, trust marks, X.509 anchors;
* the receipt of an access — ``ledger/receipts.verify_receipt`` (what ``commons log
  verify-receipt`` runs) against the pinned log key, and that it is this access's event;
* a consent artefact or a webhook notice — a compact JWS (``formats/jws.py``) by one of the
  platform's consent keys, of the expected ``typ``, from the platform, for this lender.

Each function raises on the first failed check; a return means every check passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from credit_commons.client.errors import (
    ArtefactInvalid,
    ReceiptMismatch,
    RetrievalInvalid,
    WebhookInvalid,
)
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError
from credit_commons.core.net import OutboundFetcher
from credit_commons.formats.jws import parse_compact, verify_compact
from credit_commons.keys import ACCEPTED_ALGS, PublicKey, public_key_from_jwk
from credit_commons.ledger import Receipt, VerifiedReceipt, verify_receipt
from credit_commons.verifier import (
    ForeignIssuers,
    IssuerKind,
    IssuerNotTrusted,
    TrustBundle,
    TrustEntry,
    UntrustedIssuer,
    VcFacts,
    disclosed_claims,
    issuer_kind,
    raise_for_status,
    sd_jwt_vc_facts,
    verify_sd_jwt,
)

__all__ = [
    "ARTEFACT_TYP",
    "WEBHOOK_TYP",
    "CredentialVerifier",
    "VerifiedCredential",
    "check_disclosed",
    "verify_access_receipt",
    "verify_platform_jws",
]

ARTEFACT_TYP = "consent+jwt"
WEBHOOK_TYP = "consent-event+jwt"


@dataclass(frozen=True)
class VerifiedCredential:
    """A credential whose every check passed: its issuer, type, the claims it shows
    (always-visible ones and the disclosed ones, without ``cnf`` and ``status``), and its
    status (``valid``, or ``unlisted`` when it names no status list)."""

    issuer: str
    vct: str
    claims: JsonObject
    status: str


class CredentialVerifier:
    """Verifies SD-JWT VCs issued by the platform (whose issuer identifier is
    ``platform_issuer``) or by another issuer the lender trusts, fetching keys and status
    lists through ``fetcher``.

    Who is trusted, for what (docs/lenders.md, "What `verify` checks"):

    * with ``bundle`` — the platform's trust bundle, verified under the lender's pinned key
      (:func:`~credit_commons.client.trust_bundle.fetch_bundle`) — the bundle decides for
      every issuer it lists, as the platform's step 6 does (``TrustBundle.lookup``: the
      types the entry allows, ``required_marks``, and for a credential carrying an ``x5c``
      chain the anchor it verifies up to, whose end-entity key alone then verifies it);
    * ``trusted`` issuers (https URLs, ``did:web``, ``did:key``) the bundle does not list
      are accepted for any type, without marks — the lender's own addition; an issuer the
      bundle lists is judged by the bundle even when also in ``trusted``;
    * the platform itself, when the bundle does not list it (a development platform on
      http, which its bundle never names), or without a bundle, for any type.

    With ``required_marks``, only an issuer the bundle lists with every one of them passes.
    """

    def __init__(
        self,
        platform_issuer: str,
        fetcher: OutboundFetcher,
        *,
        trusted: Iterable[str] = (),
        bundle: TrustBundle | None = None,
        required_marks: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._platform = platform_issuer
        # The platform is an issuer URL like any https issuer, even on loopback http.
        self._kinds: dict[str, IssuerKind] = {platform_issuer: "https"}
        for issuer in trusted:
            self._kinds[issuer] = issuer_kind(issuer)
        self._bundle = bundle
        self._marks = frozenset(required_marks)
        self._issuers = ForeignIssuers(fetcher, clock=clock)
        self._clock = clock

    def _listed(self, issuer: str) -> IssuerKind | None:
        # The bundle's entry for the issuer's identifier, if it lists one (never an anchor).
        entry = self._bundle.entry(issuer) if self._bundle is not None else None
        if entry is None or entry.kind == "x509":
            return None
        return issuer_kind(issuer)

    def verify(self, credential: str) -> VerifiedCredential:
        """Verify an issuer-signed SD-JWT VC (no Key Binding JWT).

        Raises the SD-JWT errors (``credential.*``, with ``credential.key_binding_unexpected``
        for a KB-JWT; an ``x5c`` chain without a bundle is an embedded key, refused),
        ``UntrustedIssuer`` (``IssuerNotTrusted`` with the bundle's reason:
        ``type_not_allowed``, ``mark_missing``, ``not_listed``, ``chain_*``,
        ``bundle_expired``), ``UnknownForeignKey``/``IssuerMetadataInvalid`` (the issuer's
        key), ``StatusListRejected`` and the fetcher's errors (its list),
        ``CredentialRevoked`` or ``CredentialSuspended``.
        """
        now = self._now()
        how: list[_How] = []

        def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
            # 1. The key comes from the issuer's published metadata, for an issuer the
            #    lender trusts — never from the token; or, through the bundle's X.509
            #    anchor, from the x5c chain's end-entity certificate once it verified.
            iss = payload.get("iss")
            if not isinstance(iss, str):
                raise UntrustedIssuer("the credential's issuer is not trusted by this lender")
            if self._bundle is not None and "x5c" in header:
                return self._certified(
                    self._bundle, iss, header["x5c"], payload=payload, now=now, how=how
                )
            listed = self._listed(iss)
            kind = listed or self._kinds.get(iss)
            if kind is None:
                raise UntrustedIssuer("the credential's issuer is not trusted by this lender")
            if listed is None and self._marks:
                raise IssuerNotTrusted("mark_missing", "the issuer carries no trust marks here")
            how.append(_How(kind, bundled=listed is not None))
            return self._issuers.key(iss, kind, header)

        # 2. RFC 9901 §7.1: the signature, the Disclosures against the digests, the times.
        verified = verify_sd_jwt(
            credential,
            issuer_key_resolver=resolve,
            require_key_binding=False,
            forbid_key_binding=True,
            now=int(self._clock()),
            key_headers=frozenset({"x5c"}) if self._bundle is not None else frozenset(),
        )
        # 3. SD-JWT VC: typ, vct, the status reference.
        facts = sd_jwt_vc_facts(verified)
        # 4. The platform's step 6, for the verified type: the bundle's entry (or anchor).
        self._issuer_trust(how[0], facts, now)
        # 5. The status, from the issuer's list (an x5c issuer's signed by the leaf's key).
        status = "unlisted"
        if facts.status is not None:
            used = how[0]
            if used.kind == "x509":
                token_status = self._issuers.status(
                    facts.issuer,
                    "x509",
                    facts.status.uri,
                    facts.status.index,
                    certified_key=used.key,
                )
            else:
                token_status = self._issuers.status(
                    facts.issuer, used.kind, facts.status.uri, facts.status.index
                )
            raise_for_status(token_status)
            status = "valid"
        return VerifiedCredential(
            facts.issuer, facts.vct, disclosed_claims(verified.payload), status
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _certified(
        self,
        bundle: TrustBundle,
        iss: str,
        x5c: object,
        *,
        payload: Mapping[str, Any],
        now: datetime,
        how: list[_How],
    ) -> PublicKey:
        # This platform's credentials carry no chain; another issuer's chain is trusted
        # only through an anchor of the bundle (verifier/issuer_keys.py, the same rule).
        if iss == self._platform:
            raise UntrustedIssuer("an x5c chain for an issuer no anchor can certify")
        if not isinstance(x5c, list):
            raise IssuerNotTrusted("chain_invalid", "x5c is an array of certificates")
        vct = payload.get("vct")
        found = bundle.lookup(
            iss, vct if isinstance(vct, str) else "", self._marks, x5c=x5c, now=now
        )
        if found.key is None:  # a lookup with x5c answers only through an anchor
            raise IssuerNotTrusted("chain_invalid", "the chain yielded no key")
        how.append(_How("x509", bundled=True, key=found.key, anchor=found.entry))
        return found.key

    def _issuer_trust(self, how: _How, facts: VcFacts, now: datetime) -> None:
        if how.anchor is not None:
            if not how.anchor.allows(facts.vct):
                raise IssuerNotTrusted(
                    "type_not_allowed", "the anchor's issuers may not issue this"
                )
        elif how.bundled and self._bundle is not None:
            self._bundle.lookup(facts.issuer, facts.vct, self._marks, now=now)


@dataclass(frozen=True, slots=True)
class _How:
    # How step 1 trusted the issuer: its kind, whether by the bundle, and for an x5c
    # chain the anchor's entry and the end-entity key.
    kind: IssuerKind | Literal["x509"]
    bundled: bool
    key: PublicKey | None = None
    anchor: TrustEntry | None = None


def check_disclosed(claims: Mapping[str, Any], disclosed: Iterable[str]) -> None:
    """Every claim path the platform says it disclosed (``/a/b``) is in the verified
    claims.  Raises :class:`RetrievalInvalid`."""
    for path in disclosed:
        node: Any = claims
        for name in path.strip("/").split("/"):
            if not isinstance(node, Mapping) or name not in node:
                raise RetrievalInvalid(f"the disclosed claim {path} is not in the credential")
            node = node[name]


def verify_access_receipt(
    receipt: Receipt | JsonObject,
    *,
    log_key: str,
    event_id: str,
    event_type: str = "access.allowed",
    witness_keys: Iterable[str] = (),
    quorum: int | None = None,
) -> VerifiedReceipt:
    """Verify the receipt of an access offline (``ledger.receipts.verify_receipt``: the
    checkpoint signed by ``log_key`` and cosigned by ``quorum`` of ``witness_keys``, the
    entry, its inclusion) and that its entry is the event ``event_id`` of ``event_type``.

    Raises the receipt's errors (``log.*``) or :class:`ReceiptMismatch`.
    """
    if isinstance(receipt, Receipt):
        receipt = receipt.model_dump(mode="json", exclude_none=True)
    verified = verify_receipt(receipt, log_key, list(witness_keys), quorum)
    if verified.entry.id != event_id or verified.entry.type != event_type:
        raise ReceiptMismatch(f"the receipt is not the receipt of {event_type} {event_id}")
    return verified


def verify_platform_jws(
    token: str,
    jwks: Mapping[str, Any],
    *,
    typ: str,
    issuer: str,
    error: type[ArtefactInvalid] | type[WebhookInvalid],
) -> JsonObject:
    """The payload of ``token`` — a compact JWS of ``typ`` signed by the key of ``jwks``
    (the platform's ``/v1/consents/jwks``) its ``kid`` names, with ``iss`` = ``issuer``.

    Raises ``error`` for every failure (the cause chained).
    """
    try:
        header = parse_compact(token, algs=ACCEPTED_ALGS).header
        listed = jwks.get("keys")
        keys = (
            {k.get("kid"): k for k in listed if isinstance(k, dict)}
            if isinstance(listed, list)
            else {}
        )
        jwk = keys.get(header.get("kid"))
        if jwk is None:
            raise error("signed by a key the platform does not publish")
        payload = verify_compact(token, public_key_from_jwk(jwk), typ=typ, algs=ACCEPTED_ALGS)
    except CommonsError as e:
        if isinstance(e, error):
            raise
        raise error(f"the signature does not verify ({e.code})") from e
    if payload.get("iss") != issuer:
        raise error("issued by another platform")
    return payload
