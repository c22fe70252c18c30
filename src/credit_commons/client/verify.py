"""What a lender verifies, with the project's own verification code (not a second copy):

* a retrieved credential — ``verifier.verify_sd_jwt`` (RFC 9901 §7.1: the issuer signature,
  every Disclosure's digest in ``_sd``, the times), with no Key Binding expected; then
  ``verifier/sd_jwt_vc.py`` (``typ``, ``vct``, the status reference); the issuer's key from
  its JWT VC Issuer Metadata (or DID) and its status list, signed by the same issuer, both
  through ``verifier/foreign.py`` and ``verifier/status_fetch.py``.  The issuer must be the
  platform or one the lender trusts;
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
from typing import Any

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
    UntrustedIssuer,
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
    ``platform_issuer``) or by one of ``trusted`` issuers (https URLs, ``did:web``,
    ``did:key``), fetching keys and status lists through ``fetcher``."""

    def __init__(
        self,
        platform_issuer: str,
        fetcher: OutboundFetcher,
        *,
        trusted: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The platform is an issuer URL like any https issuer, even on loopback http.
        self._kinds: dict[str, IssuerKind] = {platform_issuer: "https"}
        for issuer in trusted:
            self._kinds[issuer] = issuer_kind(issuer)
        self._issuers = ForeignIssuers(fetcher, clock=clock)
        self._clock = clock

    def verify(self, credential: str) -> VerifiedCredential:
        """Verify an issuer-signed SD-JWT VC (no Key Binding JWT).

        Raises the SD-JWT errors (``credential.*``, with ``credential.key_binding_unexpected``
        for a KB-JWT), ``UntrustedIssuer``, ``UnknownForeignKey``/``IssuerMetadataInvalid``
        (the issuer's key), ``StatusListRejected`` and the fetcher's errors (its list),
        ``CredentialRevoked`` or ``CredentialSuspended``.
        """
        used: list[IssuerKind] = []

        def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> PublicKey:
            # 1. The key comes from the issuer's published metadata, for an issuer the
            #    lender trusts — never from the token.
            iss = payload.get("iss")
            kind = self._kinds.get(iss) if isinstance(iss, str) else None
            if kind is None or not isinstance(iss, str):
                raise UntrustedIssuer("the credential's issuer is not trusted by this lender")
            used.append(kind)
            return self._issuers.key(iss, kind, header)

        # 2. RFC 9901 §7.1: the signature, the Disclosures against the digests, the times.
        verified = verify_sd_jwt(
            credential,
            issuer_key_resolver=resolve,
            require_key_binding=False,
            forbid_key_binding=True,
            now=int(self._clock()),
        )
        # 3. SD-JWT VC: typ, vct, the status reference; 4. the status, from the issuer's list.
        facts = sd_jwt_vc_facts(verified)
        status = "unlisted"
        if facts.status is not None:
            raise_for_status(
                self._issuers.status(facts.issuer, used[0], facts.status.uri, facts.status.index)
            )
            status = "valid"
        return VerifiedCredential(
            facts.issuer, facts.vct, disclosed_claims(verified.payload), status
        )


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
